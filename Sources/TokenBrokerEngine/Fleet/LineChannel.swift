import NIOConcurrencyHelpers

#if canImport(Glibc)
  import Glibc
#endif

/// Newline-separated lines over one socket descriptor, blocking: the fleet helper's link to
/// the daemon (README "Fleet"). Reads happen on one thread of their own; writes take a lock so
/// that lines never interleave. Lines are capped at `maxLine` bytes.
package final class LineChannel: Sendable {
  package let fd: Int32
  private let writeLock = NIOLock()
  private let buffer = NIOLockedValueBox<[UInt8]>([])
  package static let maxLine = 1 << 20

  package init(fd: Int32) { self.fd = fd }

  /// The next line without its newline; nil at end of file, on an error, or for a line longer
  /// than `maxLine` (the link is then broken: the caller closes it).
  package func readLine() -> [UInt8]? {
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
      let line = buffer.withLockedValue { b -> [UInt8]? in
        guard let nl = b.firstIndex(of: 0x0A) else { return nil }
        let line = Array(b[..<nl])
        b.removeSubrange(...nl)
        return line
      }
      if let line { return line }
      if buffer.withLockedValue({ $0.count }) > Self.maxLine { return nil }
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { return nil }
      buffer.withLockedValue { $0 += chunk[..<n] }
    }
  }

  /// Writes `bytes` whole; false when the other end is gone.
  @discardableResult
  package func write(_ bytes: [UInt8]) -> Bool {
    writeLock.withLock {
      var done = 0
      while done < bytes.count {
        let n = bytes.withUnsafeBytes {
          Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
        }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        done += n
      }
      return true
    }
  }
}

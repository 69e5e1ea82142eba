import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: a thread records every
/// notification with the monotonic time it arrived.
final class NotifyListener: Sendable {
  struct Message: Sendable {
    var at: Double
    var text: String
  }

  let path: String
  private let fd: Int32
  private let messages = Mutex<[Message]>([])
  private let stopped = Atomic<Bool>(false)
  private let finished = Atomic<Bool>(false)

  init(path: String) throws {
    self.path = path
    fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      Glibc.close(fd)
      throw BenchError("socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0 else {
      Glibc.close(fd)
      throw BenchError("bind \(path): \(String(cString: strerror(errno)))")
    }
    var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    Thread { [self] in receiveLoop() }.start()
  }

  private func receiveLoop() {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while !stopped.load(ordering: .relaxed) {
      let count = recv(fd, &buffer, buffer.count, 0)
      guard count > 0 else { continue }
      let message = Message(at: monotonic(), text: String(decoding: buffer[0..<count], as: UTF8.self))
      messages.withLock { $0.append(message) }
    }
    finished.store(true, ordering: .relaxed)
  }

  var all: [Message] { messages.withLock { $0 } }

  /// The arrival time of the first message with the line `line`, waiting up to `seconds`;
  /// nil when it did not come (or `giveUp` says to stop waiting, e.g. the daemon exited).
  func wait(for line: String, within seconds: Double, giveUp: () -> Bool = { false }) -> Double? {
    let end = monotonic() + seconds
    while monotonic() < end {
      if let m = all.first(where: { $0.text.split(separator: "\n").contains(Substring(line)) }) {
        return m.at
      }
      if giveUp() { return nil }
      usleep(1_000)
    }
    return nil
  }

  /// The most recent `STATUS=` text.
  var lastStatus: String? {
    for m in all.reversed() {
      for l in m.text.split(separator: "\n") where l.hasPrefix("STATUS=") {
        return String(l.dropFirst("STATUS=".count))
      }
    }
    return nil
  }

  func close() {
    stopped.store(true, ordering: .relaxed)
    while !finished.load(ordering: .relaxed) { usleep(10_000) }
    Glibc.close(fd)
    unlink(path)
  }
}

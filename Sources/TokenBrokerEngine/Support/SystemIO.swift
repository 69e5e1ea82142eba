import CLibcExtras

#if canImport(Glibc)
  import Glibc
#endif

/// The few things the daemon asks of the system beyond its sockets, on libc alone (the daemon
/// links no Foundation: README "Performance"). Blocking: callers run them off the
/// cooperative pool where it matters (`BlockingIO`).
package enum SystemIO {
  /// A small text file (`/proc/self/uid_map`, a unit file), or nil when it cannot be read
  /// or is larger than `limit` bytes.
  package static func readText(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    guard case .success(let bytes) = readAll(fd, limit: limit) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Why `readAll` stopped short.
  package enum ReadFailure: Error, Equatable {
    /// More than the limit.
    case tooLarge
    /// `read` failed with this errno (EISDIR, EIO, ...).
    case system(Int32)
  }

  /// An errno as the system names it ("Is a directory").
  package static func describe(errno code: Int32) -> String { String(cString: strerror(code)) }

  /// Everything left to read from `fd` (an interrupted read is retried), at most `limit` bytes:
  /// the one read loop of the daemon's files (configuration, secrets, state, /proc).
  package static func readAll(_ fd: Int32, limit: Int) -> Result<[UInt8], ReadFailure> {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        return .failure(.system(errno))
      }
      if n == 0 { return .success(bytes) }
      guard bytes.count + n <= limit else { return .failure(.tooLarge) }
      bytes += chunk[..<n]
    }
  }

  /// The names in a directory (without `.` and `..`), or nil when it cannot be listed.
  package static func directoryEntries(_ path: String) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names
  }

  /// The process's environment.
  package static func environment() -> [String: String] {
    var result: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
      let text = String(cString: entry)
      if let equals = text.firstIndex(of: "=") {
        result[String(text[..<equals])] = String(text[text.index(after: equals)...])
      }
      p += 1
    }
    return result
  }

  /// Seconds since the epoch (CLOCK_REALTIME).
  package static func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1_000_000_000
  }

  /// Gives the memory malloc holds free back to the system (`malloc_trim(0)`): after a burst
  /// such as start-up or a reload, which the daemon's steady state does not need again.
  package static func returnFreedMemory() {
    _ = tb_malloc_trim(0)
  }
}

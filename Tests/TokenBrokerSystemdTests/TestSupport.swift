import Foundation
import Glibc
import Testing

/// Every suite of this target is nested in this one and so runs one test at a time: many tests
/// change process-wide state (environment variables read by libsystemd, the descriptor table
/// under `$LISTEN_FDS`) or spawn processes, which must not race with one another.
@Suite(.serialized) struct SystemdSuite {}

/// Failures of the test helpers themselves.
struct TestSetupError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }

  static func errno(_ what: String) -> TestSetupError {
    TestSetupError("\(what): \(String(cString: strerror(Glibc.errno)))")
  }
}

/// A fresh directory under /tmp (short, so socket paths stay far below 107 bytes); removed on
/// deinit.
final class TemporaryDirectory {
  let path: String

  init() throws {
    var template = Array("/tmp/tbsd-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestSetupError.errno("mkdtemp") }
    path = String(cString: made)
  }

  deinit {
    try? FileManager.default.removeItem(atPath: path)
  }
}

/// Runs `body` with the variables set (nil: unset), then restores the previous values.
/// Only for tests inside the `.serialized` ``SystemdSuite``.
func withEnvironment<T>(_ changes: [String: String?], _ body: () throws -> T) rethrows -> T {
  var saved: [String: String?] = [:]
  for (name, value) in changes {
    saved[name] = getenv(name).map { String(cString: $0) }
    if let value { setenv(name, value, 1) } else { unsetenv(name) }
  }
  defer {
    for (name, value) in saved {
      if let value { setenv(name, value, 1) } else { unsetenv(name) }
    }
  }
  return try body()
}

/// A socket(2) of AF_UNIX bound to `path` (nil: unbound), closed on deinit.
final class UnixSocket {
  let fd: Int32

  init(type: Int32, path: String?, listen backlog: Int32? = nil) throws {
    fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError.errno("socket") }
    if let path {
      var address = sockaddr_un()
      address.sun_family = sa_family_t(AF_UNIX)
      let bytes = Array(path.utf8)
      guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
        close(fd)
        throw TestSetupError("socket path too long: \(path)")
      }
      withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
      }
      let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
      guard bound == 0 else {
        close(fd)
        throw TestSetupError.errno("bind \(path)")
      }
    }
    if let backlog, Glibc.listen(fd, backlog) != 0 {
      close(fd)
      throw TestSetupError.errno("listen")
    }
  }

  deinit { close(fd) }

  /// The next datagram as text; waits at most 5 s (a guard against hanging, not a timing
  /// assertion: the datagrams under test are queued before the sending call returns).
  func receiveDatagram() throws -> String {
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var buffer = [UInt8](repeating: 0, count: 65536)
    let count = recv(fd, &buffer, buffer.count, 0)
    guard count >= 0 else { throw TestSetupError.errno("recv") }
    return String(decoding: buffer[0..<count], as: UTF8.self)
  }

  /// True when a datagram is waiting (checked without blocking).
  func hasPendingDatagram() -> Bool {
    var byte: UInt8 = 0
    return recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) >= 0
  }
}

/// A pipe whose read end collects what a handler wrote to the write end.
final class CapturePipe {
  let readEnd: Int32
  private(set) var writeEnd: Int32

  init() throws {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw TestSetupError.errno("pipe") }
    readEnd = ends[0]
    writeEnd = ends[1]
    _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
    _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
  }

  /// Closes the write end and returns everything written (the writes must fit the pipe buffer).
  func finish() -> String {
    if writeEnd >= 0 {
      close(writeEnd)
      writeEnd = -1
    }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = read(readEnd, &chunk, chunk.count)
      if count < 0 && errno == EINTR { continue }
      if count <= 0 { break }
      data += chunk[0..<count]
    }
    return String(decoding: data, as: UTF8.self)
  }

  deinit {
    if writeEnd >= 0 { close(writeEnd) }
    close(readEnd)
  }
}

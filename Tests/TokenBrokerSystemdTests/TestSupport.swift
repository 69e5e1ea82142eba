import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

/// Every suite of this target is nested in this one and so runs one test at a time: many tests
/// change process-wide state (environment variables read by the protocol code, the descriptor table
/// under `$LISTEN_FDS`) or spawn processes, which must not race with one another.
@Suite(.serialized) struct SystemdSuite {}

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
    if let path {
      fd = try UnixSocketAddress.boundSocket(type: type, path: path)
    } else {
      fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard fd >= 0 else { throw SetupError.errno("socket") }
    }
    if let backlog, Glibc.listen(fd, backlog) != 0 {
      close(fd)
      throw SetupError.errno("listen")
    }
  }

  deinit { close(fd) }
}

/// A pipe whose read end collects what a handler wrote to the write end.
final class CapturePipe {
  let readEnd: Int32
  private(set) var writeEnd: Int32

  init() throws {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw SetupError.errno("pipe") }
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

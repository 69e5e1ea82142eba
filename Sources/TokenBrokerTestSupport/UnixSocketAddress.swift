import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A `sockaddr_un` for a path: the one place that fills one in for the tests and tools.
package struct UnixSocketAddress {
  private var storage = sockaddr_un()
  package let path: String

  /// Throws when `path` does not fit `sun_path` (107 bytes and the terminating NUL).
  package init(_ path: String) throws(SetupError) {
    self.path = path
    storage.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else {
      throw SetupError("socket path too long (\(bytes.count) bytes): \(path)")
    }
    withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
  }

  /// `body` with the address as `bind(2)` and `connect(2)` take it.
  package func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
    try withUnsafePointer(to: storage) {
      try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
  }

  /// `bind(2)`: 0, or -1 with `errno` set.
  package func bind(_ fd: Int32) -> Int32 { withSockaddr { Glibc.bind(fd, $0, $1) } }

  /// `connect(2)`: 0, or -1 with `errno` set.
  package func connect(_ fd: Int32) -> Int32 { withSockaddr { Glibc.connect(fd, $0, $1) } }

  /// A new socket of `type` (SOCK_CLOEXEC added) bound to `path`; the caller closes it.
  package static func boundSocket(type: Int32, path: String) throws -> Int32 {
    let address = try UnixSocketAddress(path)
    let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SetupError.errno("socket") }
    guard address.bind(fd) == 0 else {
      let error = SetupError.errno("bind \(path)")
      close(fd)
      throw error
    }
    return fd
  }
}

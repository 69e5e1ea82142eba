#if canImport(Glibc)
  import Glibc
#endif

/// Connecting a blocking Unix stream socket: the one place that fills a `sockaddr_un`.
package enum UnixSocket {
  /// A connected descriptor (close-on-exec, receive timeout `timeout` seconds), or
  /// the errno of what failed. Paths over 107 bytes fail with ENAMETOOLONG.
  package static func connect(path: String, timeout: Int) -> Result<Int32, Errno> {
    guard path.utf8.count <= 107 else { return .failure(Errno(code: ENAMETOOLONG)) }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(Errno(code: errno)) }
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
      for (i, b) in path.utf8.enumerated() { raw[i] = b }
    }
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard rc == 0 else {
      let e = errno
      close(fd)
      return .failure(Errno(code: e))
    }
    return .success(fd)
  }

  package struct Errno: Error, Sendable, CustomStringConvertible {
    package var code: Int32
    package var description: String { String(cString: strerror(code)) }
  }
}

import Foundation
import TokenBrokerClient

#if canImport(Glibc)
  import Glibc
#endif

/// A raw Unix stream connection for tests that send exactly the bytes they
/// mean (pipelining, garbage, oversized or half-sent requests).
package final class RawSocket: @unchecked Sendable {
  package let fd: Int32

  package init(path: String, receiveTimeout: Int = 10) throws {
    switch UnixSocket.connect(path: path, timeout: receiveTimeout) {
    case .success(let fd): self.fd = fd
    case .failure(let e): throw SetupError("connect \(path): \(e)")
    }
  }

  deinit { close(fd) }

  package func send(_ text: String) throws {
    let bytes = Array(text.utf8)
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
      }
      guard n > 0 else { throw SetupError("send: \(String(cString: strerror(errno)))") }
      sent += n
    }
  }

  /// Reads until `done` holds for what arrived, the peer closes, or the timeout
  /// passes. The blocking reads run on a thread of their own: blocking the
  /// cooperative pool (ncpu threads) would starve the broker under test.
  package func receive(until done: @escaping @Sendable (String) -> Bool) async -> String {
    let fd = self.fd
    return await withCheckedContinuation { c in
      Thread { c.resume(returning: Self.blockingReceive(fd: fd, until: done)) }.start()
    }
  }

  /// True when the peer has closed the connection (reads EOF before the timeout).
  package func isClosedByPeer() async -> Bool {
    let fd = self.fd
    return await withCheckedContinuation { c in
      Thread {
        var byte: UInt8 = 0
        c.resume(returning: recv(fd, &byte, 1, 0) == 0)
      }.start()
    }
  }

  static func blockingReceive(fd: Int32, until done: (String) -> Bool) -> String {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !done(String(decoding: data, as: UTF8.self)) {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n <= 0 { break }
      data += chunk[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
  }

}

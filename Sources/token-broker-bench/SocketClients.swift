import Foundation
import TokenBrokerClient
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Opens a blocking Unix stream connection (receive timeout `timeout` seconds).
func connectUnix(_ path: String, timeout: Int = 30) throws -> Int32 {
  switch UnixSocket.connect(path: path, timeout: timeout) {
  case .success(let fd): return fd
  case .failure(let e): throw SetupError("connect \(path): \(e)")
  }
}

func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
  var sent = 0
  while sent < bytes.count {
    let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
    if n < 0 && errno == EINTR { continue }
    guard n > 0 else { throw SetupError("send: \(String(cString: strerror(errno)))") }
    sent += n
  }
}

/// Incremental HTTP/1.1 response parsing (Content-Length bodies only, as both servers send).
struct ResponseParser {
  private var buffer: [UInt8] = []
  private(set) var statuses: [Int] = []

  /// Feeds bytes; returns how many complete responses arrived so far.
  mutating func feed(_ bytes: ArraySlice<UInt8>) -> Int {
    buffer += bytes
    while let end = Self.headerEnd(buffer) {
      let head = String(decoding: buffer[0..<end], as: UTF8.self)
      var length = 0
      for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
        length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
      }
      guard buffer.count >= end + 4 + length else { break }
      statuses.append(head.count >= 12 ? Int(head.dropFirst(9).prefix(3)) ?? 0 : 0)
      buffer.removeFirst(end + 4 + length)
    }
    return statuses.count
  }

  private static func headerEnd(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
      return i
    }
    return nil
  }
}

/// One keep-alive connection that sends GETs one after another.
final class KeepAliveConnection {
  let fd: Int32
  private var parser = ResponseParser()
  private var chunk = [UInt8](repeating: 0, count: 65536)

  init(_ path: String) throws { fd = try connectUnix(path) }
  deinit { close(fd) }

  /// `GET path`; the status.
  func get(_ path: String) throws -> Int {
    try sendAll(fd, Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
    let want = parser.statuses.count + 1
    while parser.statuses.count < want {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw SetupError("GET \(path): connection closed or timed out") }
      _ = parser.feed(chunk[0..<n])
    }
    return parser.statuses.last!
  }
}

/// Many requests in flight at once: `connections` sockets, each with `perConnection` GETs
/// pipelined, all sent before any answer is read; then every answer is collected with poll().
enum FanOut {
  struct Result: Sendable {
    var statuses: [Int]
    /// Seconds from the first connect to the last request sent.
    var sendSeconds: Double
    /// Seconds from the first connect to the last answer received.
    var totalSeconds: Double
    var failures: [String]
  }

  static func run(socket: String, path: String, connections: Int, perConnection: Int) -> Result {
    let start = monotonic()
    var fds: [Int32] = []
    var failures: [String] = []
    let request = Array(
      String(repeating: "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n", count: perConnection).utf8)
    for _ in 0..<connections {
      do {
        let fd = try connectUnix(socket)
        try sendAll(fd, request)
        fds.append(fd)
      } catch {
        failures.append("\(error)")
      }
    }
    let sent = monotonic() - start
    var parsers = [ResponseParser](repeating: ResponseParser(), count: fds.count)
    var open = Set(0..<fds.count)
    var chunk = [UInt8](repeating: 0, count: 65536)
    let deadline = start + 60
    while !open.isEmpty && monotonic() < deadline {
      let order = Array(open)
      var polls = order.map { pollfd(fd: fds[$0], events: Int16(POLLIN), revents: 0) }
      let ready = poll(&polls, nfds_t(polls.count), 1000)
      if ready <= 0 { continue }
      for (k, p) in polls.enumerated() where p.revents != 0 {
        let i = order[k]
        let n = chunk.withUnsafeMutableBytes { recv(fds[i], $0.baseAddress!, $0.count, 0) }
        if n <= 0 {
          failures.append("connection \(i) closed after \(parsers[i].statuses.count) answers")
          open.remove(i)
          continue
        }
        if parsers[i].feed(chunk[0..<n]) >= perConnection { open.remove(i) }
      }
    }
    if !open.isEmpty { failures.append("\(open.count) connections unanswered after 60 s") }
    for fd in fds { close(fd) }
    return Result(
      statuses: parsers.flatMap(\.statuses), sendSeconds: sent, totalSeconds: monotonic() - start,
      failures: failures)
  }
}

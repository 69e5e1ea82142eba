#if canImport(Glibc)
  import Glibc
#endif

/// A small blocking HTTP/1.1 client over a Unix socket, for `tokenctl`: no
/// event loop and no Foundation, so the command starts in a few milliseconds.
package struct UnixHTTPClient: Sendable {
  package var socketPath: String
  /// Seconds to wait for an answer (a cold token may need an upstream round trip).
  package var timeout: Int = 40

  package init(socketPath: String) { self.socketPath = socketPath }

  package struct Response: Sendable {
    package var status: Int
    package var headers: [String: String]
    package var body: [UInt8]
    package var text: String { String(decoding: body, as: UTF8.self) }
  }

  package enum Failure: Error, Sendable {
    /// Could not connect, or the daemon closed the connection mid-answer; errno and a sentence for people.
    case unreachable(errno: Int32, message: String)
    case protocolError(String)
  }

  /// Sends `method path` with `body` (JSON, when given) and reads the whole answer.
  /// `timeout` (seconds) replaces ``timeout`` for this request: a `GET ...?wait=30` that the
  /// daemon holds for up to 30 s needs a longer read deadline than that.
  package func request(
    _ method: String, _ path: String, accept: String = "application/json", body: [UInt8]? = nil,
    timeout: Int? = nil
  ) throws(Failure) -> Response {
    var client = self
    if let timeout { client.timeout = timeout }
    return try client.send(method, path, accept: accept, body: body ?? [])
  }

  private func send(_ method: String, _ path: String, accept: String, body: [UInt8]) throws(Failure)
    -> Response
  {
    let fd = try connectSocket()
    defer { close(fd) }
    let type = body.isEmpty ? "" : "Content-Type: application/json\r\n"
    let head =
      "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: \(accept)\r\nUser-Agent: tokenctl\r\n\(type)"
      + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    var bytes = Array(head.utf8) + body
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeMutableBytes {
        Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
      }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        if errno == EPIPE || errno == ECONNRESET { throw Self.noAnswer(errno) }
        throw .protocolError("cannot send the request: \(String(cString: strerror(errno)))")
      }
      sent += n
    }
    bytes.removeAll()
    return try readResponse(fd)
  }

  private func connectSocket() throws(Failure) -> Int32 {
    switch UnixSocket.connect(path: socketPath, timeout: timeout) {
    case .success(let fd): return fd
    case .failure(let e) where e.code == ENAMETOOLONG:
      throw .unreachable(errno: e.code, message: "socket path \(socketPath) is longer than 107 bytes")
    case .failure(let e): throw .unreachable(errno: e.code, message: Self.explain(e.code, path: socketPath))
    }
  }

  static func explain(_ e: Int32, path: String) -> String {
    switch e {
    case ENOENT:
      return
        "no socket at \(path): is token-brokerd running? (systemctl status token-broker; or pass --socket / set TOKEN_BROKER_SOCKET)"
    case ECONNREFUSED:
      return "nothing is listening on \(path): token-brokerd is not running (systemctl start token-broker)"
    case EACCES, EPERM:
      return
        "permission denied on \(path): this user may not reach the socket; ask an admin to add you to its group"
    default:
      return "cannot connect to \(path): \(String(cString: strerror(e)))"
    }
  }

  private func readResponse(_ fd: Int32) throws(Failure) -> Response {
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    var headerEnd: Int?
    var contentLength: Int?
    var status = 0
    var headers: [String: String] = [:]
    while true {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n < 0 && errno == EINTR { continue }
      if n < 0, buffer.isEmpty, errno == ECONNRESET { throw Self.noAnswer(errno) }
      if n < 0 {
        throw .protocolError(
          errno == EAGAIN
            ? "no answer within \(timeout) s" : "read failed: \(String(cString: strerror(errno)))")
      }
      if n == 0 { break }
      buffer += chunk[0..<n]
      if headerEnd == nil, let end = Self.find([13, 10, 13, 10], in: buffer) {
        headerEnd = end + 4
        let lines = String(decoding: buffer[0..<end], as: UTF8.self).split(separator: "\r\n")
        guard let first = lines.first, first.hasPrefix("HTTP/1."), first.count >= 12,
          let code = Int(first.dropFirst(9).prefix(3))
        else { throw .protocolError("the socket did not answer HTTP; is it token-brokerd's?") }
        status = code
        for line in lines.dropFirst() {
          guard let colon = line.firstIndex(of: ":") else { continue }
          headers[line[..<colon].lowercased()] = String(
            line[line.index(after: colon)...].drop(while: { $0 == " " }))
        }
        contentLength = headers["content-length"].flatMap { Int($0) }
      }
      if let h = headerEnd, let len = contentLength, buffer.count - h >= len { break }
    }
    if buffer.isEmpty { throw Self.noAnswer(ECONNRESET) }
    guard let h = headerEnd else { throw .protocolError("connection closed before an answer") }
    if let len = contentLength, buffer.count - h < len {
      // Never hand on part of an answer: a cut token printed with exit 0 fails later, elsewhere.
      throw .unreachable(
        errno: ECONNRESET,
        message:
          "token-brokerd closed the connection before the whole answer arrived "
          + "(\(buffer.count - h) of \(len) bytes); try again")
    }
    let body = Array(buffer[h...].prefix(contentLength ?? Int.max))
    return Response(status: status, headers: headers, body: body)
  }

  /// The socket accepted the connection and closed it without a byte: under socket
  /// activation that is systemd, whose service failed to start (README "Troubleshooting").
  static func noAnswer(_ code: Int32) -> Failure {
    .unreachable(
      errno: code,
      message: "token-brokerd did not answer; it may have failed to start: systemctl status token-broker")
  }

  static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
      if Array(hay[i..<(i + needle.count)]) == needle { return i }
    }
    return nil
  }
}

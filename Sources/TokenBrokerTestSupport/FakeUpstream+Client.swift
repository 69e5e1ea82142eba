import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// One answer read by ``FakeUpstream/send(_:_:headers:body:timeout:)``.
package struct FakeHTTPResponse: Sendable {
  package var status: Int
  /// Header names in lower case.
  package var headers: [String: String]
  package var body: String

  /// The body as a JSON object (empty when it is not one).
  package var json: [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
  }

  /// The query fields of the `Location` header (a redirect to a client's redirect URI).
  package var locationQuery: [String: String] {
    FakeUpstream.splitTarget(headers["location"] ?? "").query
  }
}

/// A small HTTP/1.1 client over TCP for the tests that drive the fake upstream the way a
/// browser or an OAuth client does: `http://127.0.0.1:PORT` only, one request per
/// connection, redirects never followed.
extension FakeUpstream {
  package static func send(
    _ method: String, _ url: String, headers: [String: String] = [:], body: String = "", timeout: Int = 10
  ) async throws -> FakeHTTPResponse {
    guard url.hasPrefix("http://") else { throw SetupError("only http:// URLs: \(url)") }
    let rest = url.dropFirst("http://".count)
    let authority = rest.prefix { $0 != "/" && $0 != "?" }
    var target = String(rest.dropFirst(authority.count))
    if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
    let hostPort = authority.split(separator: ":")
    guard hostPort.count == 2, let port = UInt16(hostPort[1]) else { throw SetupError("no port in \(url)") }
    let host = String(hostPort[0])
    var head = "\(method) \(target) HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\n"
    for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.utf8.count)\r\n" }
    let request = Array((head + "\r\n" + body).utf8)
    let raw: Result<[UInt8], SetupError> = await withCheckedContinuation { c in
      // Blocking socket calls on a thread of their own, off the cooperative pool.
      Thread {
        c.resume(returning: blockingExchange(host: host, port: port, request: request, timeout: timeout))
      }
      .start()
    }
    return try parseResponse(raw.get())
  }

  /// POSTs `fields` form-encoded.
  package static func postForm(
    _ url: String, _ fields: [(String, String)], headers: [String: String] = [:]
  ) async throws -> FakeHTTPResponse {
    var h = headers
    h["Content-Type"] = "application/x-www-form-urlencoded"
    return try await send("POST", url, headers: h, body: formEncode(fields))
  }

  /// POSTs `object` as JSON.
  package static func postJSON(
    _ url: String, _ object: [String: String], headers: [String: String] = [:]
  ) async throws -> FakeHTTPResponse {
    var h = headers
    h["Content-Type"] = "application/json"
    let body = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return try await send("POST", url, headers: h, body: String(decoding: body, as: UTF8.self))
  }

  /// The browser's half of a login: GETs the authorization URL and returns the `Location`
  /// the fake redirects to (the redirect URI with `code` and `state`, or `error`).
  package static func followAuthorization(_ authorizationURL: String) async throws -> String {
    let r = try await send("GET", authorizationURL)
    guard r.status == 302, let location = r.headers["location"] else {
      throw SetupError("the authorization endpoint answered \(r.status), not a redirect: \(r.body)")
    }
    return location
  }

  /// `Authorization: Basic` of the fake's client.
  package var basicAuthorization: String {
    let s = settings
    return "Basic " + Data("\(s.clientID):\(s.clientSecret)".utf8).base64EncodedString()
  }

  private static func blockingExchange(host: String, port: UInt16, request: [UInt8], timeout: Int) -> Result<
    [UInt8], SetupError
  > {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return .failure(SetupError("socket: \(String(cString: strerror(errno)))")) }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
      return .failure(SetupError("not an IPv4 address"))
    }
    let connected = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard connected == 0 else { return .failure(SetupError("connect: \(String(cString: strerror(errno)))")) }
    var sent = 0
    while sent < request.count {
      let n = request.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
      }
      guard n > 0 else { return .failure(SetupError("send: \(String(cString: strerror(errno)))")) }
      sent += n
    }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while !isComplete(data) {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n <= 0 { break }
      data += chunk[0..<n]
    }
    return .success(data)
  }

  /// Whether `data` holds a whole response: the head and `Content-Length` bytes of body.
  private static func isComplete(_ data: [UInt8]) -> Bool {
    guard let (head, bodyStart) = splitHead(data) else { return false }
    let length = head.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
      .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
    guard let length else { return false }
    return data.count - bodyStart >= length
  }

  private static func splitHead(_ data: [UInt8]) -> (String, Int)? {
    guard data.count >= 4 else { return nil }
    for i in 0...(data.count - 4)
    where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
      return (String(decoding: data[..<i], as: UTF8.self), i + 4)
    }
    return nil
  }

  private static func parseResponse(_ data: [UInt8]) throws -> FakeHTTPResponse {
    guard let (head, bodyStart) = splitHead(data) else {
      throw SetupError("no complete answer (\(data.count) bytes)")
    }
    let lines = head.split(separator: "\r\n")
    let statusParts = lines.first?.split(separator: " ") ?? []
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
      throw SetupError("bad status line: \(lines.first ?? "")")
    }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
        in: .whitespaces)
    }
    return FakeHTTPResponse(
      status: status, headers: headers, body: String(decoding: data[bodyStart...], as: UTF8.self))
  }
}

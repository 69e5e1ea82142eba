import Foundation
import Glibc
import TokenBrokerTestSupport

/// A plain HTTP/1.1 client for a server on 127.0.0.1: one request per TCP connection
/// (`Connection: close`), redirects never followed (the caller decides), blocking. Enough for
/// driving a real authorization server's forms and endpoints the way a browser or a client does.
enum LoopbackHTTP {
  struct Response: CustomStringConvertible {
    var status: Int
    /// Header names in lower case; a repeated header keeps every value in order.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The first value of the header `name` (any case).
    func header(_ name: String) -> String? {
      headers.first { $0.name == name.lowercased() }?.value
    }

    /// The body as a JSON object.
    func json() throws -> [String: Any] {
      guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
        throw SetupError("not a JSON object (HTTP \(status)): \(text.prefix(300))")
      }
      return object
    }

    var description: String { "HTTP \(status) \(text.prefix(300))" }
  }

  /// Sends one request to `url` (http://127.0.0.1:PORT/...); `headers` are added to Host,
  /// Connection and (with a body) Content-Length.
  static func send(
    _ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8] = [],
    timeout: Int = 15
  ) throws -> Response {
    guard let parsed = URLComponents(string: url), parsed.scheme == "http", let host = parsed.host,
      let port = parsed.port
    else { throw SetupError("not an http URL with a port: \(url)") }
    guard host == "127.0.0.1" else { throw SetupError("only 127.0.0.1 is served here: \(url)") }
    let target =
      (parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath)
      + (parsed.percentEncodedQuery.map { "?" + $0 } ?? "")
    var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"

    let fd = try connect(port: port, timeout: timeout)
    defer { close(fd) }
    try write(fd, Array(head.utf8) + body)
    return try parse(readToEnd(fd), url: url)
  }

  /// `send` with an `application/x-www-form-urlencoded` body and, when given, HTTP Basic
  /// client authentication (RFC 6749 2.3.1: both parts form-encoded first).
  static func postForm(
    _ url: String, _ fields: [(String, String)], basic: (user: String, password: String)? = nil,
    headers: [(String, String)] = []
  ) throws -> Response {
    var all = headers + [("Content-Type", "application/x-www-form-urlencoded")]
    if let basic {
      let pair = formEncode(basic.user) + ":" + formEncode(basic.password)
      all.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
    }
    return try send("POST", url, headers: all, body: Array(formBody(fields).utf8))
  }

  /// `name=value&...`, each part percent-encoded except RFC 3986's unreserved characters.
  static func formBody(_ fields: [(String, String)]) -> String {
    fields.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
  }

  static func formEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        out.append(Character(UnicodeScalar(byte)))
      default:
        out += String(format: "%%%02X", byte)
      }
    }
    return out
  }

  /// True when something accepts TCP connections on 127.0.0.1:`port`.
  static func accepts(port: Int) -> Bool {
    guard let fd = try? connect(port: port, timeout: 2) else { return false }
    close(fd)
    return true
  }

  private static func connect(port: Int, timeout: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SetupError.errno("socket") }
    var limit = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard rc == 0 else {
      let error = SetupError.errno("connect 127.0.0.1:\(port)")
      close(fd)
      throw error
    }
    return fd
  }

  private static func write(_ fd: Int32, _ bytes: [UInt8]) throws {
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
      }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw SetupError.errno("send") }
      sent += n
    }
  }

  private static func readToEnd(_ fd: Int32) throws -> [UInt8] {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw SetupError.errno("recv (after \(data.count) bytes)") }
      if n == 0 { return data }
      data += chunk[0..<n]
    }
  }

  private static func parse(_ raw: [UInt8], url: String) throws -> Response {
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    guard let end = raw.firstRange(of: separator) else {
      throw SetupError("\(url): no complete HTTP head in \(raw.count) bytes")
    }
    let lines = String(decoding: raw[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ", maxSplits: 2)
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
      throw SetupError("\(url): bad status line \(lines[0])")
    }
    var headers: [(name: String, value: String)] = []
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers.append(
        (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    var body = Array(raw[end.upperBound...])
    if headers.contains(where: { $0.name == "transfer-encoding" && $0.value.lowercased().contains("chunked") }
    ) {
      body = try dechunk(body, url: url)
    } else if let length = headers.first(where: { $0.name == "content-length" }).flatMap({ Int($0.value) }) {
      guard body.count >= length else { throw SetupError("\(url): body \(body.count) of \(length) bytes") }
      body = Array(body.prefix(length))
    }
    return Response(status: status, headers: headers, body: body)
  }

  private static func dechunk(_ raw: [UInt8], url: String) throws -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    let crlf: [UInt8] = [13, 10]
    while true {
      guard let lineEnd = raw[index...].firstRange(of: crlf) else {
        throw SetupError("\(url): truncated chunk")
      }
      let sizeText =
        String(decoding: raw[index..<lineEnd.lowerBound], as: UTF8.self)
        .split(separator: ";").first.map(String.init) ?? ""
      guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
        throw SetupError("\(url): bad chunk size \(sizeText)")
      }
      if size == 0 { return out }
      let start = lineEnd.upperBound
      guard start + size <= raw.count else { throw SetupError("\(url): truncated chunk") }
      out += raw[start..<start + size]
      index = start + size + 2
    }
  }
}

/// A browser's memory between requests to one server: its cookies (name=value, no
/// attributes: one host, no expiry within a test).
final class BrowserSession {
  private(set) var cookies: [(name: String, value: String)] = []

  /// A request with this session's cookies; the answer's `Set-Cookie` headers are kept.
  func send(_ method: String, _ url: String, form: [(String, String)]? = nil) throws -> LoopbackHTTP.Response
  {
    var headers: [(String, String)] = []
    if !cookies.isEmpty {
      headers.append(("Cookie", cookies.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")))
    }
    // Django's CSRF check compares Origin (when sent) with the host; a browser sends one on POST.
    if form != nil {
      if let origin = Self.origin(of: url) { headers.append(("Origin", origin)) }
      headers.append(("Referer", url))
      headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    }
    let response = try LoopbackHTTP.send(
      method, url, headers: headers, body: form.map { Array(LoopbackHTTP.formBody($0).utf8) } ?? [])
    for header in response.headers where header.name == "set-cookie" {
      let pair = header.value.split(separator: ";", maxSplits: 1)[0]
      guard let equals = pair.firstIndex(of: "=") else { continue }
      let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
      let value = String(pair[pair.index(after: equals)...])
      cookies.removeAll { $0.name == name }
      cookies.append((name, value))
    }
    return response
  }

  /// `scheme://host:port` of an absolute URL.
  static func origin(of url: String) -> String? {
    guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return nil }
    return c.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
  }

  /// `location` (absolute, or relative as Django sends it) resolved against `base`.
  static func resolve(_ location: String, against base: String) throws -> String {
    guard let url = URL(string: location, relativeTo: URL(string: base)) else {
      throw SetupError("bad Location \(location) (from \(base))")
    }
    return url.absoluteString
  }
}

/// The one form of an HTML page picked by a predicate: where it posts and the inputs that a
/// browser would send without a person typing (hidden inputs and pre-filled values; submit
/// buttons are left out: the caller adds the one that was "clicked").
struct HTMLForm {
  var action: String?
  var fields: [(name: String, value: String)]
  /// The `name`s of every input, whatever its type (to see which form this is).
  var inputNames: [String]

  /// Every `<form>` of `html`, in order.
  static func all(in html: String) -> [HTMLForm] {
    var forms: [HTMLForm] = []
    var rest = html[...]
    while let open = rest.range(of: "<form", options: .caseInsensitive) {
      guard let tagEnd = rest[open.upperBound...].firstIndex(of: ">") else { break }
      let formAttributes = attributes(String(rest[open.upperBound..<tagEnd]))
      let bodyEnd =
        rest[tagEnd...].range(of: "</form>", options: .caseInsensitive)?.lowerBound ?? rest.endIndex
      let body = rest[tagEnd..<bodyEnd]
      var form = HTMLForm(action: formAttributes["action"], fields: [], inputNames: [])
      var scan = body
      while let input = scan.range(of: "<input", options: .caseInsensitive) {
        guard let end = scan[input.upperBound...].firstIndex(of: ">") else { break }
        let a = attributes(String(scan[input.upperBound..<end]))
        scan = scan[end...]
        guard let name = a["name"] else { continue }
        form.inputNames.append(name)
        let type = (a["type"] ?? "text").lowercased()
        if type == "submit" || type == "button" || type == "image" { continue }
        if (type == "checkbox" || type == "radio") && a["checked"] == nil { continue }
        form.fields.append((name, a["value"] ?? ""))
      }
      forms.append(form)
      rest = rest[bodyEnd...].dropFirst(min(7, rest[bodyEnd...].count))
    }
    return forms
  }

  /// The attributes of a tag's inside (`name="v"`, `name='v'`, `name=v`, bare `name`),
  /// names in lower case, values with HTML's character references decoded.
  static func attributes(_ tag: String) -> [String: String] {
    var result: [String: String] = [:]
    var chars = Substring(tag)
    func skipSpace() { chars = chars.drop { $0.isWhitespace || $0 == "/" } }
    while true {
      skipSpace()
      let name = chars.prefix { !$0.isWhitespace && $0 != "=" && $0 != ">" && $0 != "/" }
      guard !name.isEmpty else { return result }
      chars = chars.dropFirst(name.count)
      chars = chars.drop { $0.isWhitespace }
      var value = ""
      if chars.first == "=" {
        chars = chars.dropFirst().drop { $0.isWhitespace }
        if let quote = chars.first, quote == "\"" || quote == "'" {
          let inner = chars.dropFirst().prefix { $0 != quote }
          value = String(inner)
          chars = chars.dropFirst(inner.count + 2)
        } else {
          let bare = chars.prefix { !$0.isWhitespace && $0 != ">" }
          value = String(bare)
          chars = chars.dropFirst(bare.count)
        }
      }
      result[name.lowercased()] = decodeEntities(value)
    }
  }

  static func decodeEntities(_ text: String) -> String {
    guard text.contains("&") else { return text }
    var out = ""
    var rest = text[...]
    while let amp = rest.firstIndex(of: "&") {
      out += rest[..<amp]
      guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 10 else {
        out.append("&")
        rest = rest[rest.index(after: amp)...]
        continue
      }
      let entity = rest[rest.index(after: amp)..<semi]
      let named = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]
      if let plain = named[String(entity)] {
        out += plain
      } else if entity.hasPrefix("#x") || entity.hasPrefix("#X"),
        let code = UInt32(entity.dropFirst(2), radix: 16),
        let scalar = UnicodeScalar(code)
      {
        out.unicodeScalars.append(scalar)
      } else if entity.hasPrefix("#"), let code = UInt32(entity.dropFirst()), let scalar = UnicodeScalar(code)
      {
        out.unicodeScalars.append(scalar)
      } else {
        out += rest[amp...semi]
      }
      rest = rest[rest.index(after: semi)...]
    }
    return out + rest
  }
}

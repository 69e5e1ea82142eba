/// `token_url`: an absolute `https://` URL, or `http://` to a loopback address.
extension ConfigReader {
  /// Returns nil after reporting what is wrong and what to do instead.
  mutating func checkedTokenURL(_ text: String, at key: [String]) -> String? {
    switch Self.checkTokenURL(text) {
    case .success: return text
    case .failure(let problem):
      report(key, problem.message)
      return nil
    }
  }

  struct URLProblem: Error {
    var message: String
  }

  static func checkTokenURL(_ text: String) -> Result<Void, URLProblem> {
    let shape = "must be an absolute URL like \"https://auth.example.com/oauth/token\""
    if hasBlankOrControl(text[...]) {
      return .failure(URLProblem(message: "\(shape); it contains a space or a control character"))
    }
    guard let separator = text.firstRange(of: "://") else {
      return .failure(URLProblem(message: "\(shape), found \(quote(text))"))
    }
    let scheme = text[..<separator.lowerBound].lowercased()
    let rest = text[separator.upperBound...]
    let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
    let authority = rest[..<authorityEnd]
    if rest[authorityEnd...].contains("#") {
      return .failure(URLProblem(message: "must not have a #fragment; remove it"))
    }
    if authority.contains("@") {
      return .failure(
        URLProblem(message: "must not hold credentials (user@host); use client_id and client_secret"))
    }
    let host: Substring
    switch checkAuthority(authority, shape: shape) {
    case .success(let checked): host = checked.host
    case .failure(let problem): return .failure(problem)
    }
    switch scheme {
    case "https":
      return .success(())
    case "http":
      guard isLoopback(String(host)) else {
        return .failure(
          URLProblem(
            message: "http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); "
              + "use https:// for \(quote(String(host)))"))
      }
      return .success(())
    default:
      return .failure(URLProblem(message: "scheme \(quote(scheme)) is not supported; use https://"))
    }
  }

  /// Whether `text` holds a space or a control character (no URL here may).
  static func hasBlankOrControl(_ text: Substring) -> Bool {
    text.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }
  }

  /// `host[:port]` of a URL (an IPv6 address in brackets): a host, and a port from 1 to 65535
  /// when one is written. `shape` leads each message (what the whole URL should look like).
  static func checkAuthority(_ authority: Substring, shape: String) -> Result<
    (host: Substring, port: Int?), URLProblem
  > {
    var host = authority
    var port: Substring? = nil
    if host.hasPrefix("[") {
      guard let close = host.firstIndex(of: "]") else {
        return .failure(URLProblem(message: "\(shape); the IPv6 address lacks its closing ']'"))
      }
      let after = host[host.index(after: close)...]
      if !after.isEmpty {
        guard after.hasPrefix(":") else {
          return .failure(URLProblem(message: "\(shape); unexpected text after the IPv6 address"))
        }
        port = after.dropFirst()
      }
      host = host[...close]
    } else if let colon = host.lastIndex(of: ":") {
      port = host[host.index(after: colon)...]
      host = host[..<colon]
    }
    if host.isEmpty || host == "[]" {
      return .failure(URLProblem(message: "\(shape); it has no host"))
    }
    guard let port else { return .success((host, nil)) }
    guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt16(port), number > 0 else {
      return .failure(URLProblem(message: "\(shape); the port must be a number from 1 to 65535"))
    }
    return .success((host, Int(number)))
  }

  /// `localhost`, `127.0.0.0/8` in dotted-quad form, `::1` (bracketed or not, any spelling).
  static func isLoopback(_ host: String) -> Bool {
    var host = host.lowercased()
    if host.hasSuffix(".") { host.removeLast() }
    if host == "localhost" { return true }
    if host.hasPrefix("[") && host.hasSuffix("]") {
      host = String(host.dropFirst().dropLast())
    }
    if let octets = ipv4Octets(host) { return octets[0] == 127 }
    if let groups = ipv6Groups(host) { return groups == [0, 0, 0, 0, 0, 0, 0, 1] }
    return false
  }

  static func ipv4Octets(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var octets: [UInt8] = []
    for part in parts {
      guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let n = UInt8(part) else { return nil }
      octets.append(n)
    }
    return octets
  }

  /// The eight 16-bit groups of an IPv6 address in hex notation (no embedded IPv4).
  static func ipv6Groups(_ text: String) -> [UInt16]? {
    func groups(_ part: Substring) -> [UInt16]? {
      if part.isEmpty { return [] }
      var result: [UInt16] = []
      for group in part.split(separator: ":", omittingEmptySubsequences: false) {
        guard (1...4).contains(group.count), let n = UInt16(group, radix: 16) else { return nil }
        result.append(n)
      }
      return result
    }
    if let gap = text.firstRange(of: "::") {
      guard let head = groups(text[..<gap.lowerBound]), let tail = groups(text[gap.upperBound...]),
        head.count + tail.count < 8
      else { return nil }
      return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    }
    guard let all = groups(Substring(text)), all.count == 8 else { return nil }
    return all
  }
}

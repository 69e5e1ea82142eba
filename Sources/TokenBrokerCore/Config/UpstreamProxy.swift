/// `[broker] https_proxy`: the HTTP proxy that upstream requests (token, device authorization,
/// revocation) go through, with `CONNECT`. The TLS session runs end to end through the tunnel:
/// the proxy learns the endpoint's host and port, never the request or the answer.
package struct UpstreamProxy: Sendable, Equatable, CustomStringConvertible {
  /// Lowercased; an IPv6 address keeps its brackets.
  package var host: String
  package var port: Int
  /// `https_proxy_user` and `https_proxy_password`, once the loader has read the password
  /// (a changed password is a changed proxy, so a reload takes it).
  package var credential: ProxyCredential?

  package init(host: String, port: Int, credential: ProxyCredential? = nil) {
    self.host = host
    self.port = port
    self.credential = credential
  }

  /// The proxy's URL, never its credential.
  package var description: String { "http://\(host):\(port)" }

  /// The host to resolve and connect to: an IPv6 address without its brackets.
  package var connectHost: String { EndpointURL.unbracketed(host) }

  /// `http://HOST:PORT` (a trailing `/` allowed); anything else says what to write instead.
  package static func parse(_ text: String) -> Result<UpstreamProxy, EndpointURL.Problem> {
    let shape = "must be the proxy's URL like \"http://proxy.example.com:3128\""
    guard let sep = text.firstRange(of: "://") else {
      return .failure(EndpointURL.Problem(message: "\(shape), found \(ConfigReader.quote(text))"))
    }
    let scheme = text[..<sep.lowerBound].lowercased()
    guard scheme == "http" else {
      return .failure(
        EndpointURL.Problem(
          message:
            "scheme \(ConfigReader.quote(scheme)) is not supported: the proxy is spoken to in plain HTTP "
            + "(CONNECT; the token endpoint's TLS runs inside the tunnel); \(shape)"))
    }
    var authority = text[sep.upperBound...]
    if authority.hasSuffix("/") { authority = authority.dropLast() }
    if authority.contains("@") {
      return .failure(
        EndpointURL.Problem(
          message:
            "must not hold credentials (user@host): set https_proxy_user and https_proxy_password instead")
      )
    }
    if authority.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
      return .failure(EndpointURL.Problem(message: "\(shape): no path, query or fragment"))
    }
    if ConfigReader.hasBlankOrControl(authority) {
      return .failure(EndpointURL.Problem(message: "\(shape); it contains a space or a control character"))
    }
    switch ConfigReader.checkAuthority(authority, shape: shape) {
    case .failure(let problem): return .failure(EndpointURL.Problem(message: problem.message))
    case .success(let checked):
      guard let port = checked.port else {
        return .failure(EndpointURL.Problem(message: "\(shape): it names no port"))
      }
      return .success(UpstreamProxy(host: checked.host.lowercased(), port: port))
    }
  }
}

extension BrokerSettings {
  /// The proxy a request to `url` goes through: none without `https_proxy`, for a loopback host
  /// (127.0.0.0/8, ::1, localhost), or for a host `no_proxy` names (the host itself, or a domain
  /// it is in: `example.com` and `.example.com` both cover `auth.example.com`).
  package func proxy(for url: String) -> UpstreamProxy? {
    guard let proxy = httpsProxy, case .success(let endpoint) = EndpointURL.parse(url) else { return nil }
    let hosts = [endpoint.host, endpoint.connectHost]
    if hosts.contains(where: ConfigReader.isLoopback) { return nil }
    for entry in noProxy {
      var domain = entry.lowercased()
      if domain.hasPrefix(".") { domain.removeFirst() }
      if hosts.contains(where: { $0 == domain || $0.hasSuffix("." + domain) }) { return nil }
    }
    return proxy
  }
}

/// What the broker answers a proxy that asks for credentials (407): `Proxy-Authorization:
/// Basic` (RFC 7617) on `CONNECT`. The proxy sees it in the clear, as every proxy that asks
/// for a password does: the broker speaks plain HTTP to it. Never shown: its description,
/// debug description and mirror leave the password out.
package struct ProxyCredential: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
  CustomReflectable
{
  package var user: String
  package var password: String

  package init(user: String, password: String) {
    self.user = user
    self.password = password
  }

  /// The `Proxy-Authorization` field's value.
  package var authorization: String { "Basic " + Base64.encode(Array("\(user):\(password)".utf8)) }

  package var description: String { "ProxyCredential(user: \(user), password: <redacted>)" }
  package var debugDescription: String { description }
  package var customMirror: Mirror { Mirror(self, children: ["user": user, "password": "<redacted>"]) }

  /// `https_proxy_user`: RFC 7617 forbids a colon in it, and it is sent in a header line.
  package static func checkUser(_ user: String) -> String? {
    if user.isEmpty { return "must not be empty" }
    if user.contains(":") {
      return "must not contain ':' (Basic authentication separates the password with it)"
    }
    if ConfigReader.hasBlankOrControl(user[...]) { return "must not contain a space or a control character" }
    return nil
  }

  /// The password as read (one trailing newline of a file dropped), or why it cannot be sent
  /// in a header line; the reason never quotes it.
  package static func checkPassword(_ read: String) -> Result<String, PasswordRefused> {
    let password = String(SecretSource.droppingOneLineEnd(read))
    if password.isEmpty { return .failure(PasswordRefused(why: "is empty")) }
    if password.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
      return .failure(PasswordRefused(why: "holds a line break or a control character; write it on one line"))
    }
    return .success(password)
  }

  package struct PasswordRefused: Error, Equatable {
    package var why: String
  }
}

/// `[broker] https_proxy`: the HTTP proxy that upstream requests (token, device authorization,
/// revocation) go through, with `CONNECT`. The TLS session runs end to end through the tunnel:
/// the proxy learns the endpoint's host and port, never the request or the answer.
package struct UpstreamProxy: Sendable, Equatable, CustomStringConvertible {
  /// Lowercased; an IPv6 address keeps its brackets.
  package var host: String
  package var port: Int

  package init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

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
          message: "must not hold credentials (user@host): proxies that ask for a password are not supported")
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

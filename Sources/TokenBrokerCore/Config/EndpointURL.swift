/// An upstream endpoint's URL (`token_url`, `revocation_url`, ... and `redirect_uri`), cut
/// into what a request needs: an absolute `https` URL, or `http` to a loopback host, with no
/// user info and no fragment (README "Configuration"; `ConfigReader.checkTokenURL` says what
/// is wrong with one that is not).
package struct EndpointURL: Sendable, Equatable, CustomStringConvertible {
  /// `https` or `http`, lowercased.
  package var scheme: String
  /// Lowercased; an IPv6 address keeps its brackets (`[::1]`).
  package var host: String
  /// The port written in the URL, if any.
  package var port: Int?
  /// Path and query, starting with `/` (just `/` when the URL has none).
  package var rest: String

  package struct Problem: Error, Sendable, Equatable {
    package var message: String
  }

  package static func parse(_ text: String) -> Result<EndpointURL, Problem> {
    if case .failure(let problem) = ConfigReader.checkTokenURL(text) {
      return .failure(Problem(message: problem.message))
    }
    guard let sep = text.firstRange(of: "://") else {
      return .failure(Problem(message: "not an absolute URL"))
    }
    let scheme = text[..<sep.lowerBound].lowercased()
    let after = text[sep.upperBound...]
    let end = after.firstIndex { $0 == "/" || $0 == "?" } ?? after.endIndex
    var authority = after[..<end]
    var port: Int?
    if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
      port = Int(authority[authority.index(after: colon)...])
      authority = authority[..<colon]
    }
    var rest = String(after[end...])
    if rest.isEmpty || rest.hasPrefix("?") { rest = "/" + rest }
    return .success(EndpointURL(scheme: scheme, host: authority.lowercased(), port: port, rest: rest))
  }

  /// The port to connect to: the written one, or the scheme's (443, 80).
  package var effectivePort: Int { port ?? (scheme == "https" ? 443 : 80) }

  /// The host to resolve and connect to: an IPv6 address without its brackets.
  package var connectHost: String { Self.unbracketed(host) }

  /// A host as it is connected to: an IPv6 address (`[::1]`) without its brackets.
  package static func unbracketed(_ host: String) -> String {
    host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
  }

  /// An IPv4 or IPv6 address rather than a name: no SNI, the certificate's IP SAN is checked.
  package var isIPAddress: Bool {
    ConfigReader.ipv4Octets(connectHost) != nil || host.hasPrefix("[")
  }

  /// The `Host` header: the host, and the port when it is written.
  package var authority: String { host + (port.map { ":\($0)" } ?? "") }

  package var description: String { "\(scheme)://\(authority)\(rest)" }
}

/// Secret values of one provider, read by the daemon from their `SecretSource`s.
/// `description` shows which are present, never their values.
package struct ResolvedSecrets: Sendable, Equatable, CustomStringConvertible {
  package var clientSecret: String?
  package var password: String?
  /// The configured first refresh token (rotated ones come from the state directory).
  package var refreshToken: String?
  package var apiKey: String?

  package init(
    clientSecret: String? = nil, password: String? = nil, refreshToken: String? = nil, apiKey: String? = nil
  ) {
    self.clientSecret = clientSecret
    self.password = password
    self.refreshToken = refreshToken
    self.apiKey = apiKey
  }

  /// Every secret value, for redaction of upstream text.
  package var values: [String] { [clientSecret, password, refreshToken, apiKey].compactMap { $0 } }

  package var description: String {
    let present = [
      clientSecret.map { _ in "client_secret" }, password.map { _ in "password" },
      refreshToken.map { _ in "refresh_token" }, apiKey.map { _ in "api_key" },
    ].compactMap { $0 }
    return "ResolvedSecrets(\(present.joined(separator: ", ")))"
  }
}

/// Which grant a single token request uses. `description` never shows a refresh token, a
/// code or a verifier, so a state machine action interpolated anywhere leaks nothing.
package enum RequestGrant: Sendable, Equatable, CustomStringConvertible {
  /// The provider's own grant (client_credentials or password).
  case primary
  /// `grant_type=refresh_token` with this token.
  case refresh(String)
  /// The code of a browser login, with the PKCE verifier and the redirect URI it was sent to.
  case authorizationCode(code: String, verifier: String, redirectURI: String)
  /// One poll of a device login (RFC 8628 section 3.4).
  case deviceCode(String)

  package var usesRefreshToken: Bool {
    if case .refresh = self { return true }
    return false
  }

  /// A login's exchange: it brings a new credential instead of using the one in force.
  package var isLogin: Bool {
    switch self {
    case .authorizationCode, .deviceCode: return true
    case .primary, .refresh: return false
    }
  }

  package var description: String {
    switch self {
    case .primary: return "primary"
    case .refresh: return "refresh(<redacted>)"
    case .authorizationCode: return "authorization_code(<redacted>)"
    case .deviceCode: return "device_code(<redacted>)"
    }
  }
}

/// A token request ready for the wire. `description` never shows headers or body.
package struct TokenRequest: Sendable, Equatable, CustomStringConvertible {
  package var url: String
  package var method: String = "POST"
  package var headers: [(name: String, value: String)]
  package var body: [UInt8]
  package var usesRefreshToken: Bool

  package init(url: String, headers: [(name: String, value: String)], body: [UInt8], usesRefreshToken: Bool) {
    self.url = url
    self.headers = headers
    self.body = body
    self.usesRefreshToken = usesRefreshToken
  }

  package func header(_ name: String) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
  }

  package static func == (a: TokenRequest, b: TokenRequest) -> Bool {
    a.url == b.url && a.method == b.method && a.body == b.body && a.usesRefreshToken == b.usesRefreshToken
      && a.headers.map { "\($0.name): \($0.value)" } == b.headers.map { "\($0.name): \($0.value)" }
  }

  package var description: String { "TokenRequest(\(method) \(url), \(body.count) body bytes)" }
}

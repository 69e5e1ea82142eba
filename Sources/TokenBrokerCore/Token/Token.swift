/// An access token held by the broker.
///
/// `description` never shows the token itself, so a `Token` interpolated into a
/// log line or an error message leaks nothing.
package struct Token: Sendable, Equatable, CustomStringConvertible {
  package var accessToken: String
  /// `Bearer` for any spelling of bearer; otherwise as the provider sent it.
  package var tokenType: String
  /// Seconds since the Unix epoch.
  package var issuedAt: Double
  /// Seconds since the Unix epoch; nil for keys that never expire.
  package var expiresAt: Double?
  /// Granted scopes when the provider said, else the requested ones.
  package var scope: [String]

  package init(
    accessToken: String, tokenType: String, issuedAt: Double, expiresAt: Double?, scope: [String]
  ) {
    self.accessToken = accessToken
    self.tokenType = tokenType
    self.issuedAt = issuedAt
    self.expiresAt = expiresAt
    self.scope = scope
  }

  /// Seconds of validity left at `now` (infinite for keys without expiry).
  package func remaining(at now: Double) -> Double {
    guard let expiresAt else { return .infinity }
    return expiresAt - now
  }

  /// Whole lifetime in seconds (infinite without expiry).
  package var lifetime: Double {
    guard let expiresAt else { return .infinity }
    return expiresAt - issuedAt
  }

  /// The value of the header line to send upstream, e.g. `Bearer abc`.
  package var authorizationValue: String { "\(tokenType) \(accessToken)" }

  package var description: String {
    "Token(type: \(tokenType), issuedAt: \(issuedAt), expiresAt: \(expiresAt.map { "\($0)" } ?? "never"), "
      + "scope: \(scope.joined(separator: " ")), access_token: <redacted>)"
  }
}

/// A successful token response, parsed.
package struct TokenResponse: Sendable, Equatable, CustomStringConvertible {
  package var token: Token
  /// A new refresh token, if the provider issued one (rotation).
  package var refreshToken: String?

  package init(token: Token, refreshToken: String?) {
    self.token = token
    self.refreshToken = refreshToken
  }

  package var description: String {
    "TokenResponse(\(token), refresh_token: \(refreshToken == nil ? "none" : "<redacted>"))"
  }
}

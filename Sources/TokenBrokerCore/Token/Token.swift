/// An access token held by the broker.
///
/// `description` never shows the token itself, so a `Token` interpolated into a
/// log line or an error message leaks nothing.
public struct Token: Sendable, Equatable, CustomStringConvertible {
  public var accessToken: String
  /// `Bearer` for any spelling of bearer; otherwise as the provider sent it.
  public var tokenType: String
  /// Seconds since the Unix epoch.
  public var issuedAt: Double
  /// Seconds since the Unix epoch; nil for keys that never expire.
  public var expiresAt: Double?
  /// Granted scopes when the provider said, else the requested ones.
  public var scope: [String]

  public init(
    accessToken: String, tokenType: String, issuedAt: Double, expiresAt: Double?, scope: [String]
  ) {
    self.accessToken = accessToken
    self.tokenType = tokenType
    self.issuedAt = issuedAt
    self.expiresAt = expiresAt
    self.scope = scope
  }

  /// Seconds of validity left at `now` (infinite for keys without expiry).
  public func remaining(at now: Double) -> Double {
    guard let expiresAt else { return .infinity }
    return expiresAt - now
  }

  /// Whole lifetime in seconds (infinite without expiry).
  public var lifetime: Double {
    guard let expiresAt else { return .infinity }
    return expiresAt - issuedAt
  }

  /// The value of the header line to send upstream, e.g. `Bearer abc`.
  public var authorizationValue: String { "\(tokenType) \(accessToken)" }

  public var description: String {
    "Token(type: \(tokenType), issuedAt: \(issuedAt), expiresAt: \(expiresAt.map { "\($0)" } ?? "never"), "
      + "scope: \(scope.joined(separator: " ")), access_token: <redacted>)"
  }
}

/// A successful token response, parsed.
public struct TokenResponse: Sendable, Equatable, CustomStringConvertible {
  public var token: Token
  /// A new refresh token, if the provider issued one (rotation).
  public var refreshToken: String?

  public init(token: Token, refreshToken: String?) {
    self.token = token
    self.refreshToken = refreshToken
  }

  public var description: String {
    "TokenResponse(\(token), refresh_token: \(refreshToken == nil ? "none" : "<redacted>"))"
  }
}

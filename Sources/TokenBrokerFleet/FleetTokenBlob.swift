import TokenBrokerCore
import TokenBrokerEngine

/// The plaintexts sealed into a row, small JSON objects written with the broker's own writer
/// (as the state files are): `at_ct` holds `{"v":1,"access_token","token_type","issued_at",
/// "expires_at","scope"}`, `rt_ct` holds `{"v":1,"refresh_token"}` (a row without a refresh
/// token has no `rt_ct`).
enum FleetTokenBlob {
  static func access(_ token: Token) -> [UInt8] {
    JSONWriter.encode(
      .object([
        ("v", .number(1)),
        ("access_token", .string(token.accessToken)),
        ("token_type", .string(token.tokenType)),
        ("issued_at", .number(token.issuedAt)),
        ("expires_at", token.expiresAt.map { .number($0) } ?? .null),
        ("scope", .array(token.scope.map { .string($0) })),
      ]))
  }

  static func refresh(_ refreshToken: String) -> [UInt8] {
    JSONWriter.encode(.object([("v", .number(1)), ("refresh_token", .string(refreshToken))]))
  }

  /// The `at_ct` of a row a logout emptied (`FleetRow.loggedOut`): sealed as a token is, so a
  /// `seed` column saying `logged_out` without it does not log a fleet out.
  static let loggedOut = JSONWriter.encode(.object([("v", .number(1)), ("logged_out", .bool(true))]))

  /// nil when a plaintext is not in this format (it authenticated, so a newer broker wrote it).
  static func decode(access: [UInt8], refresh: [UInt8]?) -> FleetTokens? {
    guard let a = JSONValue.parse(access), a["v"]?.number == 1,
      let accessToken = a["access_token"]?.string, let tokenType = a["token_type"]?.string,
      let issuedAt = a["issued_at"]?.number, let scope = a["scope"]?.array
    else { return nil }
    let expiresAt: Double?
    switch a["expires_at"] {
    case .number(let n): expiresAt = n
    case .null, nil: expiresAt = nil
    default: return nil
    }
    let scopes = scope.compactMap(\.string)
    guard scopes.count == scope.count else { return nil }
    var refreshToken: String?
    if let refresh {
      guard let r = JSONValue.parse(refresh), r["v"]?.number == 1, let rt = r["refresh_token"]?.string else {
        return nil
      }
      refreshToken = rt
    }
    return FleetTokens(
      token: Token(
        accessToken: accessToken, tokenType: tokenType, issuedAt: issuedAt, expiresAt: expiresAt,
        scope: scopes),
      refreshToken: refreshToken)
  }
}

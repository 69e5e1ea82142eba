/// Parses a token endpoint's successful answer in any of the seed dialects:
/// `token_type` in any case, `expires_in` as number or numeric string, else the
/// JWT `exp` claim, `created_at` honoured, `scope` kept, `refresh_token` picked up.
package enum TokenResponseParser {
  /// Lifetime assumed when a response carries neither `expires_in` nor a JWT `exp`.
  package static let assumedLifetime: Double = 3600
  /// The longest lifetime taken from an answer (10 years): a larger `expires_in`, or
  /// a JWT `exp`/`iat` further out, is clamped, so no later arithmetic overflows.
  package static let maxLifetime: Double = 315_360_000

  package static func parse(
    body: [UInt8], requestedScope: [String], now: Double
  ) throws(UpstreamFailure) -> TokenResponse {
    guard !body.isEmpty else {
      throw UpstreamFailure(
        .retryLater, status: 200, message: "token endpoint answered 200 with an empty body")
    }
    guard let object = JSONValue.parse(body), object.object != nil else {
      throw UpstreamFailure(
        .retryLater, status: 200, message: "token endpoint answered 200 with a body that is not a JSON object"
      )
    }
    guard let access = object["access_token"]?.string, !access.isEmpty else {
      throw UpstreamFailure(.retryLater, status: 200, message: "token response has no access_token")
    }
    guard isHeaderSafe(access) else {
      throw UpstreamFailure(
        .retryLater, status: 200, message: "token response access_token has invalid characters")
    }
    let rawType = object["token_type"]?.string ?? "Bearer"
    let tokenType = rawType.lowercased() == "bearer" ? "Bearer" : rawType
    guard isHeaderSafe(tokenType), !tokenType.contains(" ") else {
      throw UpstreamFailure(
        .retryLater, status: 200, message: "token response token_type has invalid characters")
    }

    // `created_at` (and a JWT's `iat`) only ever shortens a token: a token is never valid for
    // longer than `expires_in` from the moment it arrives, so a time ahead of this machine's
    // clock (issuer skew) counts as now, never as later.
    var issuedAt = now
    if let created = object["created_at"]?.numberOrNumericString, created.isFinite {
      issuedAt = min(created, now)
    }
    let expiresAt: Double
    if let raw = object["expires_in"], !raw.isNull {
      guard let seconds = raw.numberOrNumericString else {
        throw UpstreamFailure(.retryLater, status: 200, message: "token response expires_in is not a number")
      }
      guard seconds > 0, seconds.isFinite else {
        throw UpstreamFailure(.retryLater, status: 200, message: "token response expires_in is not positive")
      }
      expiresAt = issuedAt + min(seconds, maxLifetime)
    } else if let claims = JWT.claims(of: access), let exp = claims.exp, exp.isFinite {
      if let iat = claims.iat, iat.isFinite { issuedAt = min(iat, now) }
      expiresAt = min(exp, now + maxLifetime)
    } else {
      expiresAt = issuedAt + assumedLifetime
    }
    issuedAt = max(issuedAt, now - maxLifetime)
    guard expiresAt > now else {
      let ago = Int(min(now - expiresAt, maxLifetime))
      throw UpstreamFailure(
        .retryLater, status: 200,
        message:
          "token response is already expired (\(ago) s ago by this machine's clock): check created_at, the JWT exp and both clocks"
      )
    }

    var scope = requestedScope
    if let granted = object["scope"]?.string {
      scope = granted.split(separator: " ").map(String.init)
    } else if let granted = object["scope"]?.array {
      scope = granted.compactMap(\.string)
    }
    let refresh = object["refresh_token"]?.string.flatMap { $0.isEmpty ? nil : $0 }
    return TokenResponse(
      token: Token(
        accessToken: access, tokenType: tokenType, issuedAt: issuedAt, expiresAt: expiresAt, scope: scope),
      refreshToken: refresh)
  }

  /// Visible ASCII only: a token goes verbatim into an HTTP header line.
  static func isHeaderSafe(_ s: String) -> Bool {
    s.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
  }
}

import Foundation

/// Giving a grant back and asking what a token is: token revocation (RFC 7009), token
/// introspection (RFC 7662) and PlaceOS's token inspection (seed 003).
extension FakeUpstream {
  /// `POST {base}/revoke` with `token` and `token_type_hint` and the dialect's client
  /// authentication, as Powerverse's `/oauth2/revoke` (seed 000) and RFC 7009 2.1: 200 with
  /// an empty body, also for a token the fake does not know. A refresh token revokes its
  /// whole family (every refresh token of the rotation chain) and every access token issued
  /// from it; an access token revokes itself only. ``LoginSettings/revocationFault`` makes
  /// every request fail instead (nothing is revoked then).
  func revoke(_ r: Recorded) -> FakeAnswer {
    if let fault = settings.login.revocationFault {
      if case .delayed(let seconds) = fault { return .delayed(seconds, revokeNow(r)) }
      return answer(for: fault)
    }
    return revokeNow(r)
  }

  private func revokeNow(_ r: Recorded) -> FakeAnswer {
    guard let p = parameters(r) else { return wrongDialect("a JSON or form body") }
    if let failure = clientAuthenticationFailure(r, p) { return failure }
    guard let token = p["token"], !token.isEmpty else {
      return error(400, code: "invalid_request", message: "no token")
    }
    state.withLockedValue { s in
      let issued = s.login.tokens[token]
      let known = issued != nil || s.issuedRefresh.contains(token)
      s.login.revocations.append(
        RevocationRequest(token: token, tokenTypeHint: p["token_type_hint"], known: known))
      switch issued?.kind {
      case .refresh:
        for (t, info) in s.login.tokens where info.family == issued!.family {
          s.login.revoked.insert(t)
          s.validRefresh.remove(t)
        }
      case .access:
        s.login.revoked.insert(token)
      case nil:
        // a seeded refresh token never used: nothing was issued from it
        if s.validRefresh.remove(token) != nil { s.login.revoked.insert(token) }
      }
    }
    return .respond(status: 200, headers: [:], body: [])
  }

  /// `POST {base}/introspect` with `token` (and `token_type_hint`) and the dialect's client
  /// authentication, as an RFC 7662 introspection endpoint: `{"active":true,"scope",
  /// "client_id","exp","iat","token_type","sub"}` for a token this fake issued that is not
  /// revoked, rotated out or expired (`exp` only for access tokens, `token_type` `Bearer` or
  /// `refresh_token`), else `{"active":false}`.
  func introspect(_ r: Recorded) -> FakeAnswer {
    guard let p = parameters(r) else { return wrongDialect("a JSON or form body") }
    if let failure = clientAuthenticationFailure(r, p) { return failure }
    guard let token = p["token"], !token.isEmpty else {
      return error(400, code: "invalid_request", message: "no token")
    }
    guard let t = activeToken(token) else { return json(200, ["active": false]) }
    let s = settings
    var o: [String: Any] = [
      "active": true, "client_id": s.clientID, "iat": Int(t.issuedAt), "sub": s.login.subject,
      "token_type": t.kind == .access ? "Bearer" : "refresh_token",
    ]
    if let exp = t.expiresAt { o["exp"] = Int(exp) }
    if let scope = t.scope { o["scope"] = scope }
    return json(200, o)
  }

  /// `GET /api/engine/v2/api_keys/inspect?bearer_token=TOKEN` (also `{base}/inspect`), as
  /// PlaceOS (seed 003): no client authentication, the token authenticates itself. An active
  /// access token answers 200 with PlaceOS's user JWT payload `{"iss":"POS","iat","exp",
  /// "aud":DOMAIN,"sub":USER_ID,"scope":[…],"u":{"n","e","p","r"}}`; anything else (no
  /// token, unknown, revoked, expired, a refresh token, an `api-key`) is 401 with an empty body.
  func inspect(query q: [String: String]) -> FakeAnswer {
    guard let token = q["bearer_token"], let t = activeToken(token), t.kind == .access else {
      return .respond(status: 401, headers: [:], body: [])
    }
    let s = settings
    return json(
      200,
      [
        "iss": "POS", "iat": Int(t.issuedAt), "exp": Int(t.expiresAt ?? t.issuedAt), "aud": "127.0.0.1",
        "sub": s.login.subject, "scope": (t.scope ?? "public").split(separator: " ").map(String.init),
        "u": ["n": "Operator", "e": s.username, "p": 0, "r": [String]()] as [String: Any],
      ])
  }
}

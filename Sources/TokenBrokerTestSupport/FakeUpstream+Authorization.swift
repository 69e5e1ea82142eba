import Foundation

/// The authorization code flow (RFC 6749 4.1 with PKCE, RFC 7636): the authorization
/// endpoint a browser is sent to, and the `authorization_code` grant at the token endpoint.
extension FakeUpstream {
  /// `GET {base}/authorize?response_type=code&client_id&redirect_uri&scope&state&
  /// code_challenge&code_challenge_method=S256[&nonce][&…]`, as Powerverse's
  /// `/oauth2/authorize` and PlaceOS's `/auth/oauth/authorize` (seeds 000 and 003) with the
  /// user already signed in: the consent page is ``LoginSettings/authorization``.
  ///
  /// Records the request; answers 302 to `redirect_uri` with `code` and `state` (approve) or
  /// `error`, `error_description` and `state` (deny). A wrong `client_id` or a missing
  /// `redirect_uri` is a 400 page and no redirect (RFC 6749 4.1.2.1); a wrong
  /// `response_type` or, with `requirePKCE`, a missing S256 challenge redirects with
  /// `error=unsupported_response_type` / `invalid_request`.
  func authorize(query q: [String: String]) -> FakeAnswer {
    let known: Set = [
      "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
      "code_challenge_method",
      "nonce",
    ]
    let request = AuthorizationRequest(
      responseType: q["response_type"], clientID: q["client_id"], redirectURI: q["redirect_uri"],
      scope: q["scope"], state: q["state"], codeChallenge: q["code_challenge"],
      codeChallengeMethod: q["code_challenge_method"], nonce: q["nonce"],
      extra: q.filter { !known.contains($0.key) })
    let s = settings
    state.withLockedValue { $0.login.authorizationRequests.append(request) }
    guard request.clientID == s.clientID, let redirect = request.redirectURI, !redirect.isEmpty else {
      return .respond(
        status: 400, headers: ["Content-Type": "text/html"],
        body: Array("<p>unknown client or no redirect_uri</p>".utf8))
    }
    func back(_ fields: [(String, String)]) -> FakeAnswer {
      var fields = fields
      if let st = request.state { fields.append(("state", st)) }
      let separator = redirect.contains("?") ? "&" : "?"
      return .respond(
        status: 302, headers: ["Location": redirect + separator + Self.formEncode(fields)], body: [])
    }
    guard request.responseType == "code" else {
      return back([("error", "unsupported_response_type"), ("error_description", "only response_type=code")])
    }
    if s.login.requirePKCE, request.codeChallenge?.isEmpty != false || request.codeChallengeMethod != "S256" {
      return back([("error", "invalid_request"), ("error_description", "PKCE S256 is required")])
    }
    switch s.login.authorization {
    case .approve:
      let code = "ac_\(UUID().uuidString.prefix(16))"
      let now = self.now()
      state.withLockedValue { $0.login.codes[code] = IssuedCode(request: request, issuedAt: now) }
      return back([("code", code)])
    case .deny(let description):
      return back([("error", "access_denied"), ("error_description", description)])
    case .error(let code, let description):
      return back([("error", code), ("error_description", description)])
    }
  }

  /// `grant_type=authorization_code` with `code`, `redirect_uri`, `code_verifier` (client
  /// authentication already checked): the code must be one this fake issued to this client,
  /// unused, younger than `codeLifetime`, with the same `redirect_uri` as its authorization
  /// request and BASE64URL(SHA-256(code_verifier)) equal to its challenge. Issues an access
  /// token and a refresh token of a new family in the dialect's answer format. A code used a
  /// second time is refused and the tokens issued from it are revoked (RFC 6749 4.1.2).
  /// Every refusal is 400 `invalid_grant`; a failed check leaves the code usable.
  func exchangeCode(_ p: [String: String]) -> FakeAnswer {
    let now = self.now()
    let code = p["code"] ?? ""
    let lifetime = settings.login.codeLifetime
    enum Outcome {
      case refused(String)
      case issue(family: Int, scope: String?)
    }
    let outcome = state.withLockedValue { s -> Outcome in
      guard let issued = s.login.codes[code] else { return .refused("unknown authorization code") }
      if let family = issued.family {
        for (token, t) in s.login.tokens where t.family == family {
          s.login.revoked.insert(token)
          s.validRefresh.remove(token)
        }
        return .refused("authorization code already used")
      }
      guard now - issued.issuedAt <= lifetime else { return .refused("authorization code expired") }
      guard p["client_id"] == nil || p["client_id"] == issued.request.clientID else {
        return .refused("authorization code issued to another client")
      }
      guard p["redirect_uri"] == issued.request.redirectURI else { return .refused("redirect_uri mismatch") }
      if let challenge = issued.request.codeChallenge {
        guard let verifier = p["code_verifier"], Self.pkceChallenge(verifier) == challenge else {
          return .refused("PKCE verification failed")
        }
      } else if p["code_verifier"] != nil {
        return .refused("code_verifier without a code_challenge")
      }
      let family = s.login.newFamily(scope: issued.request.scope)
      s.login.codes[code]!.family = family
      return .issue(family: family, scope: issued.request.scope)
    }
    switch outcome {
    case .refused(let why):
      return error(400, code: "invalid_grant", message: why)
    case .issue(let family, let scope):
      // PlaceOS grants `public` when no scope was asked for (seed 003).
      return issue(refresh: true, scope: scope ?? (dialect == .placeos ? "public" : nil), family: family)
    }
  }
}

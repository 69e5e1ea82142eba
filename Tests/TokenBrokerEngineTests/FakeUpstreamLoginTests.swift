import Foundation
import Testing
import TokenBrokerTestSupport

/// The fake upstream's login endpoints, driven over HTTP as a browser and an OAuth client
/// would: each test fails when the behaviour the broker's login tests rely on breaks.
@Suite struct FakeUpstreamLoginTests {
  /// RFC 7636 appendix B's verifier; its S256 challenge is `E9Melhoa…-cM`.
  static let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
  static let redirect = "http://127.0.0.1:8765/callback"

  static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

  /// A started fake on a manual clock; stopped after `body`.
  static func with(
    _ dialect: FakeUpstream.Dialect, settings: FakeUpstream.Settings = FakeUpstream.Settings(),
    _ body: (FakeUpstream, ManualClock) async throws -> Void
  ) async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(dialect, settings: settings, now: { clock.now() })
    try await upstream.start()
    do {
      try await body(upstream, clock)
    } catch {
      await upstream.stop()
      throw error
    }
    await upstream.stop()
  }

  static func authorizationURL(
    _ up: FakeUpstream, state: String = "st-1", challenge: String? = FakeUpstream.pkceChallenge(verifier),
    extra: String = ""
  ) -> String {
    var url =
      up.authorizeURL + "?response_type=code&client_id=client-1&redirect_uri="
      + "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=read%3Asites%20read%3Aassets&state=\(state)"
    if let challenge { url += "&code_challenge=\(challenge)&code_challenge_method=S256" }
    return url + extra
  }

  /// A code from the authorization endpoint (approve).
  static func code(_ up: FakeUpstream) async throws -> String {
    let location = try await FakeUpstream.followAuthorization(authorizationURL(up))
    return try #require(FakeUpstream.splitQuery(location)["code"])
  }

  /// Powerverse's form code exchange with client_secret_post (seed 000).
  static func exchange(
    _ up: FakeUpstream, code: String, verifier: String = verifier, redirect: String = redirect
  ) async throws -> FakeHTTPResponse {
    try await FakeUpstream.postForm(
      up.tokenURL,
      [
        ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect),
        ("code_verifier", verifier), ("client_id", "client-1"), ("client_secret", "s3cret-client"),
      ])
  }

  static func introspect(_ up: FakeUpstream, _ token: String) async throws -> [String: Any] {
    let r = try await FakeUpstream.postForm(
      up.introspectURL, [("token", token), ("client_id", "client-1"), ("client_secret", "s3cret-client")])
    #expect(r.status == 200)
    return r.json
  }

  // MARK: SHA-256 and PKCE

  /// The fake checks PKCE with the core's SHA-256 (its vectors are in LoginPrimitivesTests).
  @Test func theFakesChallengeIsRFC7636AppendixB() {
    #expect(FakeUpstream.pkceChallenge(Self.verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
  }

  // MARK: Authorization endpoint

  @Test func approveRedirectsWithCodeAndStateAndRecordsTheRequest() async throws {
    try await Self.with(.powerverse) { up, _ in
      let r = try await FakeUpstream.send(
        "GET", Self.authorizationURL(up, extra: "&nonce=n-0S6&prompt=consent"))
      #expect(r.status == 302)
      let location = try #require(r.headers["location"])
      #expect(location.hasPrefix(Self.redirect + "?code="))
      #expect(r.locationQuery["state"] == "st-1")
      #expect(r.locationQuery["code"] == up.issuedAuthorizationCodes.first)
      let req = try #require(up.authorizationRequests.first)
      #expect(req.clientID == "client-1")
      #expect(req.redirectURI == Self.redirect)
      #expect(req.scope == "read:sites read:assets")
      #expect(req.state == "st-1")
      #expect(req.codeChallenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
      #expect(req.codeChallengeMethod == "S256")
      #expect(req.nonce == "n-0S6")
      #expect(req.extra == ["prompt": "consent"])
    }
  }

  @Test func denyRedirectsWithAccessDeniedAndState() async throws {
    try await Self.with(.powerverse) { up, _ in
      up.decideAuthorizations(.deny(description: "user said no"))
      let r = try await FakeUpstream.send("GET", Self.authorizationURL(up))
      #expect(r.status == 302)
      #expect(
        r.locationQuery == ["error": "access_denied", "error_description": "user said no", "state": "st-1"])
      #expect(up.issuedAuthorizationCodes.isEmpty)
      up.decideAuthorizations(.approve)
      #expect(try await FakeUpstream.send("GET", Self.authorizationURL(up)).locationQuery["code"] != nil)
    }
  }

  @Test func authorizationWithoutPKCEOrForAnotherClientIsRefused() async throws {
    try await Self.with(.placeos) { up, _ in
      let noPKCE = try await FakeUpstream.send("GET", Self.authorizationURL(up, challenge: nil))
      #expect(noPKCE.status == 302)
      #expect(noPKCE.locationQuery["error"] == "invalid_request")
      let other = try await FakeUpstream.send(
        "GET", Self.authorizationURL(up).replacingOccurrences(of: "client-1", with: "client-2"))
      #expect(other.status == 400)
      #expect(other.headers["location"] == nil)
      #expect(up.issuedAuthorizationCodes.isEmpty)
    }
  }

  // MARK: Code exchange

  @Test func powerverseFormCodeExchangeWithClientSecretPost() async throws {
    try await Self.with(.powerverse) { up, _ in
      let r = try await Self.exchange(up, code: try await Self.code(up))
      #expect(r.status == 200)
      #expect(r.json["token_type"] as? String == "Bearer")
      #expect(r.json["expires_in"] as? Int == 3600)
      #expect(r.json["scope"] as? String == "read:sites read:assets")
      let refresh = try #require(r.json["refresh_token"] as? String)
      #expect(up.acceptsRefreshToken(refresh))
      #expect(r.json["access_token"] as? String == up.issuedAccessTokens.last)
      // without the secret (a confidential client) the exchange is refused
      let code = try await Self.code(up)
      let noSecret = try await FakeUpstream.postForm(
        up.tokenURL,
        [
          ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect),
          ("code_verifier", Self.verifier), ("client_id", "client-1"),
        ])
      #expect(noSecret.status == 401)
      #expect((noSecret.json["error"] as? [String: Any])?["code"] as? String == "UNAUTHORIZED")
    }
  }

  @Test func wrongVerifierRedirectMismatchAndReuseAreRefused() async throws {
    try await Self.with(.powerverse) { up, _ in
      let code = try await Self.code(up)
      let wrong = try await Self.exchange(up, code: code, verifier: String(Self.verifier.reversed()))
      #expect(wrong.status == 400)
      #expect((wrong.json["error"] as? [String: Any])?["code"] as? String == "invalid_grant")
      let mismatch = try await Self.exchange(up, code: code, redirect: "http://127.0.0.1:8766/callback")
      #expect(mismatch.status == 400)
      let ok = try await Self.exchange(up, code: code)
      #expect(ok.status == 200)
      let access = try #require(ok.json["access_token"] as? String)
      let refresh = try #require(ok.json["refresh_token"] as? String)
      // a code used twice: refused, and what was issued from it is revoked (RFC 6749 4.1.2)
      let again = try await Self.exchange(up, code: code)
      #expect(again.status == 400)
      #expect(!up.acceptsRefreshToken(refresh))
      #expect(!up.isActive(access))
    }
  }

  @Test func anExpiredCodeIsRefused() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.codeLifetime = 60
    try await Self.with(.powerverse, settings: settings) { up, clock in
      let code = try await Self.code(up)
      await clock.advance(by: 61)
      #expect(try await Self.exchange(up, code: code).status == 400)
      let fresh = try await Self.code(up)
      up.expireAuthorizationCodes()
      #expect(try await Self.exchange(up, code: fresh).status == 400)
    }
  }

  @Test func placeOSJSONCodeExchangeAndItsInspectShape() async throws {
    try await Self.with(.placeos) { up, clock in
      let location = try await FakeUpstream.followAuthorization(
        Self.authorizationURL(up).replacingOccurrences(of: "&scope=read%3Asites%20read%3Aassets", with: ""))
      let code = try #require(FakeUpstream.splitQuery(location)["code"])
      let r = try await FakeUpstream.postJSON(
        up.tokenURL,
        [
          "grant_type": "authorization_code", "code": code, "redirect_uri": Self.redirect,
          "code_verifier": Self.verifier, "client_id": "client-1",
        ])
      #expect(r.status == 200)
      #expect(r.json["token_type"] as? String == "bearer")
      #expect(r.json["created_at"] as? Int == Int(clock.now()))
      #expect(r.json["scope"] as? String == "public")
      let access = try #require(r.json["access_token"] as? String)
      #expect(access.hasPrefix("at_placeos_"))  // opaque by default

      #expect(up.inspectURL.hasSuffix("/api/engine/v2/api_keys/inspect"))
      let inspected = try await FakeUpstream.send("GET", up.inspectURL + "?bearer_token=" + access)
      #expect(inspected.status == 200)
      let j = inspected.json
      #expect(Set(j.keys) == ["iss", "iat", "exp", "aud", "sub", "scope", "u"])
      #expect(j["iss"] as? String == "POS")
      #expect(j["scope"] as? [String] == ["public"])
      #expect(j["exp"] as? Int == Int(clock.now()) + 3600)
      #expect(Set((j["u"] as? [String: Any] ?? [:]).keys) == ["n", "e", "p", "r"])
      #expect(try await FakeUpstream.send("GET", up.inspectURL + "?bearer_token=nope").status == 401)
      // PlaceOS also answers at {base}/inspect
      #expect(
        try await FakeUpstream.send("GET", up.origin + "/auth/oauth/inspect?bearer_token=" + access).status
          == 200)
      await clock.advance(by: 3600)
      #expect(try await FakeUpstream.send("GET", up.inspectURL + "?bearer_token=" + access).status == 401)
    }
  }

  // MARK: Device grant

  static func startDevice(_ up: FakeUpstream) async throws -> String {
    let r = try await FakeUpstream.postJSON(
      up.deviceURL, ["client_id": "client-1", "client_secret": "s3cret-client", "scope": "read:sites"])
    #expect(r.status == 200)
    #expect(r.json["interval"] as? Int == 5)
    #expect(r.json["expires_in"] as? Int == 600)
    #expect((r.json["verification_uri"] as? String)?.hasPrefix(up.origin + "/auth/activate") == true)
    let user = try #require(r.json["user_code"] as? String)
    #expect(
      r.json["verification_uri_complete"] as? String == (r.json["verification_uri"] as? String ?? "")
        + "?user_code=" + user)
    return try #require(r.json["device_code"] as? String)
  }

  static func poll(_ up: FakeUpstream, _ deviceCode: String) async throws -> (Int, String?) {
    let r = try await FakeUpstream.postJSON(
      up.tokenURL,
      [
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode,
        "client_id": "client-1", "client_secret": "s3cret-client",
      ])
    if r.status == 200 { return (200, r.json["refresh_token"] as? String) }
    return (r.status, (r.json["error"] as? [String: Any])?["code"] as? String)
  }

  @Test func deviceScriptAnswersInOrderAndCountsPolls() async throws {
    try await Self.with(.powerverse) { up, clock in
      up.scriptDevicePolls([.pending, .slowDown, .pending, .approve])
      let device = try await Self.startDevice(up)
      #expect(up.deviceAuthorizationRequests.map(\.scope) == ["read:sites"])
      var answers: [String?] = []
      for _ in 0..<4 {
        let (status, what) = try await Self.poll(up, device)
        answers.append(status == 200 ? "tokens" : what)
        await clock.advance(by: 5)
      }
      #expect(answers == ["authorization_pending", "slow_down", "authorization_pending", "tokens"])
      #expect(up.devicePollCount == 4)
      let t0 = try #require(up.devicePollTimes.first)
      #expect(up.devicePollTimes == [t0, t0 + 5, t0 + 10, t0 + 15])
      #expect(up.validRefreshTokens.count == 1)
      // the device code is used up
      #expect(try await Self.poll(up, device) == (400, "invalid_grant"))
    }
  }

  @Test func deviceDenyExpireAndEnforcedInterval() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.enforceDeviceInterval = true
    try await Self.with(.powerverse, settings: settings) { up, clock in
      up.scriptDevicePolls([.deny])
      let denied = try await Self.startDevice(up)
      #expect(try await Self.poll(up, denied) == (400, "access_denied"))
      #expect(try await Self.poll(up, denied) == (400, "access_denied"))

      up.scriptDevicePolls([.expire])
      let expired = try await Self.startDevice(up)
      #expect(try await Self.poll(up, expired) == (400, "expired_token"))

      up.scriptDevicePolls([])
      let slow = try await Self.startDevice(up)
      #expect(try await Self.poll(up, slow) == (400, "authorization_pending"))
      await clock.advance(by: 4)
      #expect(try await Self.poll(up, slow) == (400, "slow_down"))  // sooner than 5 s
      await clock.advance(by: 9)
      #expect(try await Self.poll(up, slow) == (400, "slow_down"))  // 9 s: 10 s were needed
      await clock.advance(by: 14)
      #expect(try await Self.poll(up, slow) == (400, "slow_down"))  // 14 s: now 15 s are needed
      await clock.advance(by: 20)
      #expect(try await Self.poll(up, slow) == (400, "authorization_pending"))
      await clock.advance(by: 600)
      #expect(try await Self.poll(up, slow) == (400, "expired_token"))
    }
  }

  // MARK: Revocation and introspection

  @Test func revocationMakesTheFamilyInactiveAndTheRefreshTokenRefused() async throws {
    try await Self.with(.formPassword) { up, _ in
      let basic = ["Authorization": up.basicAuthorization]
      let code = try await Self.code(up)
      let first = try await FakeUpstream.postForm(
        up.tokenURL,
        [
          ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect),
          ("code_verifier", Self.verifier),
        ], headers: basic)
      #expect(first.status == 200)
      let rt1 = try #require(first.json["refresh_token"] as? String)
      let at1 = try #require(first.json["access_token"] as? String)
      let second = try await FakeUpstream.postForm(
        up.tokenURL, [("grant_type", "refresh_token"), ("refresh_token", rt1)], headers: basic)
      let rt2 = try #require(second.json["refresh_token"] as? String)
      let at2 = try #require(second.json["access_token"] as? String)
      #expect(up.isActive(at1) && up.isActive(at2) && up.isActive(rt2) && !up.isActive(rt1))

      let active = try await FakeUpstream.postForm(up.introspectURL, [("token", at2)], headers: basic)
      #expect(active.json["active"] as? Bool == true)
      #expect(active.json["client_id"] as? String == "client-1")
      #expect(active.json["scope"] as? String == "read:sites read:assets")
      #expect(active.json["token_type"] as? String == "Bearer")
      #expect(active.json["sub"] as? String == "opr_abc123")
      #expect(active.json["exp"] as? Int != nil && active.json["iat"] as? Int != nil)
      // introspection needs the client
      #expect(try await FakeUpstream.postForm(up.introspectURL, [("token", at2)]).status == 401)
      // revocation needs the client too, and revokes nothing without it
      #expect(try await FakeUpstream.postForm(up.revokeURL, [("token", rt2)]).status == 401)
      #expect(up.isActive(rt2))

      up.failRevocation(.status(503))
      #expect(
        try await FakeUpstream.postForm(up.revokeURL, [("token", rt2)], headers: basic).status == 503)
      #expect(up.isActive(rt2) && up.revokedTokens.isEmpty)
      up.failRevocation(nil)

      let revoked = try await FakeUpstream.postForm(
        up.revokeURL, [("token", rt2), ("token_type_hint", "refresh_token")], headers: basic)
      #expect(revoked.status == 200)
      #expect(revoked.body.isEmpty)
      #expect(up.revocationRequests == [.init(token: rt2, tokenTypeHint: "refresh_token", known: true)])
      #expect(up.revokedTokens == [rt1, rt2, at1, at2])
      for token in [at1, at2, rt2] {
        let r = try await FakeUpstream.postForm(up.introspectURL, [("token", token)], headers: basic)
        #expect(r.body == #"{"active":false}"#)
      }
      let refused = try await FakeUpstream.postForm(
        up.tokenURL, [("grant_type", "refresh_token"), ("refresh_token", rt2)], headers: basic)
      #expect(refused.status == 400)
      #expect(refused.json["error"] as? String == "invalid_grant")
      #expect(up.revokedRefreshTokens.isEmpty)  // not reuse detection
      // an unknown token: still 200 (RFC 7009 2.2)
      let unknown = try await FakeUpstream.postForm(up.revokeURL, [("token", "nope")], headers: basic)
      #expect(unknown.status == 200)
      #expect(up.revocationRequests.last?.known == false)
    }
  }

  @Test func revokingAnAccessTokenLeavesTheRefreshToken() async throws {
    try await Self.with(.powerverse) { up, _ in
      let r = try await Self.exchange(up, code: try await Self.code(up))
      let access = try #require(r.json["access_token"] as? String)
      let refresh = try #require(r.json["refresh_token"] as? String)
      let revoked = try await FakeUpstream.postJSON(
        up.revokeURL, ["token": access, "client_id": "client-1", "client_secret": "s3cret-client"])
      #expect(revoked.status == 200)
      #expect(try await Self.introspect(up, access)["active"] as? Bool == false)
      #expect(try await Self.introspect(up, refresh)["active"] as? Bool == true)
      #expect(try await Self.introspect(up, refresh)["token_type"] as? String == "refresh_token")
    }
  }

  @Test func jwtAccessTokensCarryHeaderAndClaims() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.accessTokenFormat = .jwt
    try await Self.with(.placeos, settings: settings) { up, clock in
      let code = try await Self.code(up)
      let r = try await FakeUpstream.postJSON(
        up.tokenURL,
        [
          "grant_type": "authorization_code", "code": code, "redirect_uri": Self.redirect,
          "code_verifier": Self.verifier, "client_id": "client-1",
        ])
      let token = try #require(r.json["access_token"] as? String)
      let parts = token.split(separator: ".").map(String.init)
      #expect(parts.count == 3)
      func decode(_ part: String) -> [String: Any] {
        var b64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        let data = Data(base64Encoded: b64) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
      }
      let header = decode(parts[0])
      #expect(header["alg"] as? String == "RS256")
      #expect(header["kid"] as? String == "fake-key-1")
      #expect(header["typ"] as? String == "at+jwt")
      let claims = decode(parts[1])
      #expect(claims["iss"] as? String == up.origin)
      #expect(claims["sub"] as? String == "opr_abc123")
      #expect(claims["aud"] as? String == "https://platform.example")
      #expect(claims["iat"] as? Int == Int(clock.now()))
      #expect(claims["exp"] as? Int == Int(clock.now()) + 3600)
      #expect(claims["scope"] as? String == "read:sites read:assets")
      #expect(claims["client_id"] as? String == "client-1")
      #expect(!parts[2].isEmpty && !parts[2].contains("="))
      #expect(try await FakeUpstream.send("GET", up.inspectURL + "?bearer_token=" + token).status == 200)
    }
  }

  @Test func aPublicClientNeedsOnlyItsID() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.publicClient = true
    try await Self.with(.formPassword, settings: settings) { up, _ in
      let code = try await Self.code(up)
      let r = try await FakeUpstream.postForm(
        up.tokenURL,
        [
          ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect),
          ("code_verifier", Self.verifier), ("client_id", "client-1"),
        ])
      #expect(r.status == 200)
      let refresh = try #require(r.json["refresh_token"] as? String)
      let revoked = try await FakeUpstream.postForm(
        up.revokeURL, [("token", refresh), ("client_id", "client-1")])
      #expect(revoked.status == 200)
      #expect(!up.isActive(refresh))
    }
  }
}

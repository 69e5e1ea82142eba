import Foundation
import Testing
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// The login flows through the real socket against the fake upstream in the seeds'
/// dialects (README "Logging in"): browser login by code + PKCE, device login on a manual
/// clock, logout with and without revocation, and inspection.
@Suite struct LoginFlowTests {
  /// An `authorization_code` provider: Powerverse exchanging the code in a form body with
  /// client_secret_post, or PlaceOS's public client with JSON.
  static func loginProvider(
    _ p: inout ProviderConfig, _ secrets: inout ResolvedSecrets, _ upstream: FakeUpstream
  ) {
    p.grant = .authorizationCode
    switch upstream.dialect {
    case .powerverse:
      p.clientAuth = .clientSecretPost
      p.body = .form
      secrets.clientSecret = upstream.settings.clientSecret
    default:
      p.clientAuth = .none
      p.body = .json
    }
    p.login.authorizeURL = upstream.authorizeURL
    p.login.deviceAuthorizationURL = upstream.deviceURL
    p.login.revocationURL = upstream.revokeURL
    p.login.introspectionURL = upstream.introspectURL
    if upstream.dialect == .placeos {
      p.login.introspectionURL = upstream.inspectURL
      p.login.introspectionMethod = .bearerQuery
    }
  }

  static func with(
    _ dialect: FakeUpstream.Dialect = .powerverse, stateDir: String? = nil,
    upstream settings: FakeUpstream.Settings = FakeUpstream.Settings(),
    tweak: @escaping @Sendable (inout ProviderConfig) -> Void = { _ in },
    _ body: (Single) async throws -> Void
  ) async throws {
    var upstreamSettings = settings
    upstreamSettings.login.publicClient = dialect != .powerverse
    try await Single.with(
      dialect, grant: .authorizationCode, scopes: ["read:sites"], upstreamSettings: upstreamSettings,
      stateDir: stateDir,
      configure: { p, secrets, upstream in
        loginProvider(&p, &secrets, upstream)
        tweak(&p)
      }, body)
  }

  func code(_ r: UnixHTTPClient.Response) -> String? {
    (r.json["error"] as? [String: Any])?["code"] as? String
  }

  func browserLogin(_ s: Single, redirect: String = "http://127.0.0.1:4567/callback") async throws -> String {
    let start = try await s.harness.post(
      "/v1/providers/p/login", json: #"{"method":"browser","redirect_uri":"\#(redirect)"}"#)
    #expect(start.status == 200, "\(start.text)")
    let url = try #require(start.json["authorization_url"] as? String)
    return try await FakeUpstream.followAuthorization(url)
  }

  @Test(arguments: [FakeUpstream.Dialect.powerverse, .placeos])
  func aBrowserLoginStoresTheRefreshTokenAndServes(dialect: FakeUpstream.Dialect) async throws {
    try await Self.with(dialect) { s in
      let before = try await s.harness.get("/v1/status")
      let entry = try #require((before.json["providers"] as? [[String: Any]])?.first)
      #expect(entry["state"] as? String == "needs_login")
      #expect(entry["last_error"] as? String == "p needs a login: run tokenctl login p")

      let location = try await browserLogin(s)
      let request = try #require(s.upstream.authorizationRequests.last)
      #expect(request.codeChallengeMethod == "S256")
      #expect(request.codeChallenge?.count == 43)
      #expect(request.redirectURI == "http://127.0.0.1:4567/callback")
      #expect(await s.status().state == .loginPending)

      let done = try await s.harness.post(
        "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      #expect(done.status == 200, "\(done.text)")
      #expect(done.json["state"] as? String == "ok")
      // The refresh token was on disk before the login answered.
      let record = try StateStore(directory: s.harness.stateDir).load("p")
      #expect(record?.refreshToken == s.upstream.issuedRefreshTokens.last)
      #expect(record?.needsLogin == false)
      let token = try await s.harness.get("/v1/token/p")
      #expect(token.status == 200)
      #expect(token.json["access_token"] as? String == s.upstream.issuedAccessTokens.last)
      // Nothing secret in the answers of the login.
      for secret in s.upstream.issuedRefreshTokens + s.upstream.issuedAuthorizationCodes {
        #expect(!done.text.contains(secret))
      }
      let view = try await s.harness.get("/v1/providers/p/login")
      #expect(view.json["status"] as? String == "done")
    }
  }

  @Test func aWrongStateIsRefusedAndTheLoginStaysPending() async throws {
    try await Self.with { s in
      _ = try await browserLogin(s)
      let r = try await s.harness.post(
        "/v1/providers/p/login/complete", json: #"{"code":"abc","state":"forged"}"#)
      #expect(r.status == 400)
      #expect(code(r) == "invalid_state")
      #expect(s.upstream.issuedRefreshTokens.isEmpty)
      #expect(await s.status().state == .loginPending)
    }
  }

  @Test func aLoginNotCompletedInTenMinutesExpires() async throws {
    try await Self.with { s in
      let location = try await browserLogin(s)
      await s.clock.advance(by: 601)
      let r = try await s.harness.post(
        "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      #expect(r.status == 400)
      #expect(code(r) == "login_expired")
      #expect(await s.status().state == .needsLogin)
    }
  }

  @Test func aDeniedLoginIsReportedAsAccessDenied() async throws {
    try await Self.with { s in
      s.upstream.decideAuthorizations(.deny(description: "the user said no"))
      let location = try await browserLogin(s)
      let r = try await s.harness.post(
        "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      #expect(r.status == 400)
      #expect(code(r) == "access_denied")
      #expect(r.text.contains("the user said no"))
      let view = try await s.harness.get("/v1/providers/p/login")
      #expect(view.json["status"] as? String == "denied")
    }
  }

  @Test func aRedirectURIOtherThanTheConfiguredOneIsRefused() async throws {
    try await Self.with { s in
      let r = try await s.harness.post(
        "/v1/providers/p/login",
        json: #"{"method":"browser","redirect_uri":"http://127.0.0.1:4567/elsewhere"}"#)
      #expect(r.status == 400)
      #expect(code(r) == "bad_request")
    }
  }

  @Test func aDaemonRestartBetweenLoginAndCompletionAsksForANewLogin() async throws {
    let dir = try TempDirectory.make("tb-login-restart")
    var location = ""
    try await Self.with(stateDir: dir) { s in location = try await browserLogin(s) }
    try await Self.with(stateDir: dir) { s in
      let r = try await s.harness.post(
        "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      #expect(r.status == 400)
      #expect(code(r) == "no_login")
      #expect((r.json["error"] as? [String: Any])?["message"] as? String != nil)
    }
  }

  @Test func aDeviceLoginPollsAtItsIntervalSlowsDownAndEndsApproved() async throws {
    try await Self.with { s in
      s.upstream.scriptDevicePolls([.pending, .slowDown, .approve])
      let start = try await s.harness.post("/v1/providers/p/login", json: #"{"method":"device"}"#)
      #expect(start.status == 200, "\(start.text)")
      #expect(start.json["user_code"] as? String == s.upstream.deviceAuthorizationRequests.last?.userCode)
      #expect(start.json["verification_uri"] as? String != nil)
      #expect(start.json["interval"] as? Int == 5)
      let engine = try #require(s.harness.broker.engine(named: "p"))
      let t0 = s.clock.now()
      for _ in 0..<3 {
        #expect(await s.clock.advanceToNextTimer())
        await engine.settle()
      }
      // Polls at +5 (pending), +10 (slow_down), then 10 s later (+20): approved.
      #expect(s.upstream.devicePollTimes.map { $0 - t0 } == [5, 10, 20])
      #expect(await s.status().state == .ok)
      let view = try await s.harness.get("/v1/providers/p/login?wait=1")
      #expect(view.json["status"] as? String == "done")
      #expect(try await s.harness.get("/v1/token/p").status == 200)
    }
  }

  @Test func aDeniedOrExpiredDeviceLoginStopsPolling() async throws {
    for (answer, status) in [(FakeUpstream.DeviceAnswer.deny, "denied"), (.expire, "expired")] {
      try await Self.with { s in
        s.upstream.scriptDevicePolls([answer])
        _ = try await s.harness.post("/v1/providers/p/login", json: #"{"method":"device"}"#)
        let engine = try #require(s.harness.broker.engine(named: "p"))
        await s.clock.advanceToNextTimer()
        await engine.settle()
        let view = try await s.harness.get("/v1/providers/p/login")
        #expect(view.json["status"] as? String == status)
        await s.clock.advance(by: 60)
        #expect(s.upstream.devicePollCount == 1)
        #expect(await s.status().state == .needsLogin)
      }
    }
  }

  func loggedIn(_ s: Single) async throws {
    let location = try await browserLogin(s)
    let done = try await s.harness.post(
      "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
    #expect(done.status == 200, "\(done.text)")
  }

  @Test func logoutRevokesAtTheProviderThenForgetsDurably() async throws {
    try await Self.with { s in
      try await loggedIn(s)
      let refresh = try #require(s.upstream.issuedRefreshTokens.last)
      let access = try #require(s.upstream.issuedAccessTokens.last)
      let r = try await s.harness.post("/v1/providers/p/logout")
      #expect(r.status == 200, "\(r.text)")
      #expect(r.json["revoked"] as? Bool == true)
      #expect(r.json["state"] as? String == "needs_login")
      #expect(s.upstream.revokedTokens.contains(refresh))
      #expect(!s.upstream.isActive(access))
      let record = try StateStore(directory: s.harness.stateDir).load("p")
      #expect(record?.refreshToken == nil)
      #expect(record?.needsLogin == true)
      #expect(try await s.harness.get("/v1/token/p").status == 503)
    }
  }

  @Test func logoutWithoutARevocationEndpointOnlyForgets() async throws {
    try await Self.with(tweak: { $0.login.revocationURL = nil }) { s in
      try await loggedIn(s)
      let r = try await s.harness.post("/v1/providers/p/logout")
      #expect(r.status == 200)
      #expect(r.json["revoked"] as? Bool == false)
      #expect(s.upstream.revocationRequests.isEmpty)
      #expect(try StateStore(directory: s.harness.stateDir).load("p")?.refreshToken == nil)
    }
  }

  @Test func aFailedRevocationForgetsNothing() async throws {
    try await Self.with { s in
      try await loggedIn(s)
      s.upstream.failRevocation(.status(503))
      let r = try await s.harness.post("/v1/providers/p/logout")
      #expect(r.status == 502)
      #expect(code(r) == "upstream_error")
      #expect(await s.status().state == .ok)
      #expect(try StateStore(directory: s.harness.stateDir).load("p")?.refreshToken != nil)
    }
  }

  @Test func inspectShowsAJWTsHeaderAndClaimsButNeverTheToken() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.accessTokenFormat = .jwt
    try await Self.with(upstream: settings) { s in
      try await loggedIn(s)
      let r = try await s.harness.get("/v1/token/p/info")
      #expect(r.status == 200, "\(r.text)")
      #expect(r.json["format"] as? String == "jwt")
      #expect((r.json["header"] as? [String: Any])?["alg"] != nil)
      #expect((r.json["claims"] as? [String: Any])?["sub"] as? String == settings.login.subject)
      let access = try #require(s.upstream.issuedAccessTokens.last)
      #expect(!r.text.contains(access))
      #expect(!r.text.contains(String(access.split(separator: ".").last ?? "")))
    }
  }

  @Test func inspectAsksTheIntrospectionEndpointAboutAnOpaqueToken() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.accessTokenFormat = .opaque
    try await Self.with(upstream: settings) { s in
      try await loggedIn(s)
      let r = try await s.harness.get("/v1/token/p/info")
      #expect(r.status == 200, "\(r.text)")
      #expect(r.json["format"] as? String == "opaque")
      #expect((r.json["introspection"] as? [String: Any])?["active"] as? Bool == true)
      #expect(!r.text.contains(try #require(s.upstream.issuedAccessTokens.last)))
    }
  }

  @Test func placeOSInspectIsAskedWithTheBearerTokenOnTheQuery() async throws {
    var settings = FakeUpstream.Settings()
    settings.login.accessTokenFormat = .opaque
    try await Self.with(.placeos, upstream: settings) { s in
      try await loggedIn(s)
      let r = try await s.harness.get("/v1/token/p/info")
      #expect(r.status == 200, "\(r.text)")
      #expect(r.json["format"] as? String == "opaque")
      let answer = try #require(r.json["introspection"] as? [String: Any])
      #expect(answer["sub"] as? String == settings.login.subject)
    }
  }
}

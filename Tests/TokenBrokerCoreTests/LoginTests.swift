import Testing
import TokenBrokerCore

/// The pieces of the login flows that need no I/O: SHA-256 and PKCE, the redirect URI
/// rule, the authorization URL, the redirect's parsing and the login state machine.
@Suite struct LoginPrimitivesTests {
  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { b in String(b, radix: 16).count == 1 ? "0" + String(b, radix: 16) : String(b, radix: 16) }
      .joined()
  }

  @Test func sha256MatchesTheFIPSVectors() {
    #expect(
      Self.hex(SHA256.hash("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      Self.hex(SHA256.hash("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(
      Self.hex(SHA256.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    #expect(
      Self.hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
        == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test func pkceChallengeIsRFC7636AppendixB() {
    #expect(
      PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    let verifier = PKCE.verifier(random: Array(0..<32))
    #expect(verifier.count == 43)
    #expect(verifier.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
  }

  @Test func aPortlessLoopbackRedirectAdmitsAnyPortAndNothingElse() throws {
    let configured = try RedirectURI.parse("http://127.0.0.1/callback").get()
    #expect(configured.isLoopback)
    #expect(configured.admits(try RedirectURI.parse("http://127.0.0.1:53682/callback").get()))
    #expect(configured.admits(configured))
    #expect(!configured.admits(try RedirectURI.parse("http://127.0.0.1:53682/other").get()))
    #expect(!configured.admits(try RedirectURI.parse("http://localhost:53682/callback").get()))
    let fixed = try RedirectURI.parse("http://localhost:8400/cb").get()
    #expect(!fixed.admits(try RedirectURI.parse("http://localhost:8401/cb").get()))
    let https = try RedirectURI.parse("https://app.example.com/oauth").get()
    #expect(!https.isLoopback)
    #expect(throws: RedirectURI.Problem.self) { try RedirectURI.parse("http://app.example.com/cb").get() }
    #expect(throws: RedirectURI.Problem.self) { try RedirectURI.parse("myapp:/cb").get() }
  }

  @Test func theAuthorizationURLCarriesPKCEStateAndExtrasButNoSecret() {
    let url = AuthorizationRequest.url(
      endpoint: "https://auth.example.com/oauth2/authorize", clientID: "cid",
      redirectURI: "http://127.0.0.1:5000/callback", scopes: ["read:sites", "offline_access"], state: "st",
      challenge: "ch", nonce: nil, extra: ["prompt": "consent", "state": "ignored"])
    #expect(
      url
        == "https://auth.example.com/oauth2/authorize?response_type=code&client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&scope=read%3Asites%20offline_access&state=st&code_challenge=ch&code_challenge_method=S256&prompt=consent"
    )
  }

  @Test func theRedirectIsReadFromAWholeAddressOrAQuery() {
    #expect(
      AuthorizationResponse.parse(redirectURL: "http://127.0.0.1:5000/callback?code=a%2Bb&state=s+1")
        == AuthorizationResponse(code: "a+b", state: "s 1"))
    #expect(
      AuthorizationResponse.parse(redirectURL: "?error=access_denied&error_description=no%20way&state=s")
        == AuthorizationResponse(state: "s", error: "access_denied", errorDescription: "no way"))
    #expect(AuthorizationResponse.parse(redirectURL: "http://127.0.0.1/callback?state=s") == nil)
  }
}

/// The login state machine: every transition of a browser and a device login.
@Suite struct LoginStateMachineTests {
  static let t0 = 1_800_000_000.0

  static func browser() -> LoginStateMachine {
    var m = LoginStateMachine(name: "pv")
    _ = m.startBrowser(
      state: "st", verifier: "ver", nonce: nil, redirectURI: "http://127.0.0.1:5/cb", now: t0)
    return m
  }

  static let device = DeviceAuthorization(
    deviceCode: "dc", userCode: "ABCD-EFGH", verificationURI: "https://auth.example/device", expiresIn: 600,
    interval: 5)

  @Test func theRightStateExchangesTheCodeWithTheVerifier() throws {
    var m = Self.browser()
    let actions = try m.complete(AuthorizationResponse(code: "c1", state: "st"), now: Self.t0 + 10).get()
    #expect(
      actions == [
        .exchange(.authorizationCode(code: "c1", verifier: "ver", redirectURI: "http://127.0.0.1:5/cb"))
      ])
    #expect(m.status(now: Self.t0 + 10) == .exchanging)
    #expect(m.exchanged(nil, now: Self.t0 + 11) == [])
    #expect(m.status(now: Self.t0 + 11) == .done)
    #expect(m.current?.verifier == nil)
  }

  @Test func aWrongOrMissingStateIsRefusedAndTheLoginStaysPending() {
    var m = Self.browser()
    #expect(
      m.complete(AuthorizationResponse(code: "c1", state: "other"), now: Self.t0).failureCode
        == "invalid_state")
    #expect(m.complete(AuthorizationResponse(code: "c1"), now: Self.t0).failureCode == "invalid_state")
    #expect(m.status(now: Self.t0) == .pending)
  }

  @Test func aDeniedLoginIsReportedAsSuch() {
    var m = Self.browser()
    let r = m.complete(
      AuthorizationResponse(state: "st", error: "access_denied", errorDescription: "user said no"),
      now: Self.t0)
    #expect(r.failureCode == "access_denied")
    #expect(m.status(now: Self.t0) == .denied)
    #expect(m.current?.message?.contains("user said no") == true)
  }

  @Test func aLoginNotCompletedInTimeExpires() {
    var m = Self.browser()
    let late = Self.t0 + LoginStateMachine.browserLifetime
    #expect(m.status(now: late - 1) == .pending)
    #expect(m.status(now: late) == .expired)
    #expect(
      m.complete(AuthorizationResponse(code: "c", state: "st"), now: late).failureCode == "login_expired")
  }

  @Test func aSecondLoginReplacesTheFirst() {
    var m = Self.browser()
    _ = m.startBrowser(
      state: "st2", verifier: "v2", nonce: nil, redirectURI: "http://127.0.0.1:6/cb", now: Self.t0)
    #expect(
      m.complete(AuthorizationResponse(code: "c", state: "st"), now: Self.t0).failureCode == "invalid_state")
    #expect((try? m.complete(AuthorizationResponse(code: "c", state: "st2"), now: Self.t0).get()) != nil)
  }

  @Test func completingWithoutALoginIsRefused() {
    var m = LoginStateMachine(name: "pv")
    #expect(m.complete(AuthorizationResponse(code: "c", state: "s"), now: Self.t0).failureCode == "no_login")
  }

  @Test func aDeviceLoginPollsAtItsIntervalAndSlowsDownByFiveSeconds() {
    var m = LoginStateMachine(name: "pv")
    let (_, start) = m.deviceStarted(Self.device, now: Self.t0)
    #expect(start == [.cancelPoll, .schedulePoll(at: Self.t0 + 5)])
    #expect(m.pollDue(now: Self.t0 + 5) == [.exchange(.deviceCode("dc"))])
    let pending = UpstreamFailure(
      .configurationWrong, status: 400, code: "authorization_pending", message: "p")
    #expect(m.exchanged(pending, now: Self.t0 + 6) == [.schedulePoll(at: Self.t0 + 11)])
    #expect(m.pollDue(now: Self.t0 + 11) == [.exchange(.deviceCode("dc"))])
    let slow = UpstreamFailure(.configurationWrong, status: 400, code: "slow_down", message: "s")
    #expect(m.exchanged(slow, now: Self.t0 + 12) == [.schedulePoll(at: Self.t0 + 22)])
    #expect(m.current?.interval == 10)
    _ = m.pollDue(now: Self.t0 + 22)
    #expect(m.exchanged(nil, now: Self.t0 + 23) == [])
    #expect(m.status(now: Self.t0 + 23) == .done)
  }

  @Test func aDeviceLoginStopsOnDenialExpiryAndItsOwnDeadline() {
    for (code, status) in [("access_denied", LoginStateMachine.Status.denied), ("expired_token", .expired)] {
      var m = LoginStateMachine(name: "pv")
      _ = m.deviceStarted(Self.device, now: Self.t0)
      _ = m.pollDue(now: Self.t0 + 5)
      let failure = UpstreamFailure(.configurationWrong, status: 400, code: code, message: code)
      #expect(m.exchanged(failure, now: Self.t0 + 6) == [])
      #expect(m.status(now: Self.t0 + 6) == status)
      #expect(m.pollDue(now: Self.t0 + 11) == [])
    }
    var m = LoginStateMachine(name: "pv")
    _ = m.deviceStarted(Self.device, now: Self.t0)
    #expect(m.pollDue(now: Self.t0 + 600) == [])
    #expect(m.status(now: Self.t0 + 600) == .expired)
  }

  @Test func aDevicePollThatFailsOnTheWayIsRetriedAtTheInterval() {
    var m = LoginStateMachine(name: "pv")
    _ = m.deviceStarted(Self.device, now: Self.t0)
    _ = m.pollDue(now: Self.t0 + 5)
    #expect(
      m.exchanged(UpstreamFailure(.retryLater, message: "refused"), now: Self.t0 + 6) == [
        .schedulePoll(at: Self.t0 + 11)
      ])
    #expect(m.status(now: Self.t0 + 6) == .pending)
  }
}

extension Result where Failure == LoginStateMachine.Refusal {
  var failureCode: String? {
    if case .failure(let r) = self { return r.code }
    return nil
  }
}

import Testing
import TokenBrokerCore

/// The tokens one run hands to the next (README "Restarts and upgrades"): the encoding, the
/// identity check, and the refresh machine starting from them.
@Suite struct TokenHandoverTests {
  typealias Machine = RefreshStateMachine
  static let t0 = 1_800_000_000.0
  static let base = ScopeSet(["read"])
  static let other = ScopeSet(["read", "write"])
  static let identity = CredentialIdentity(fingerprint: "f1", seed: "s1", key: nil)

  static func token(_ value: String, at: Double = t0, lifetime: Double = 1000) -> Token {
    Token(accessToken: value, tokenType: "Bearer", issuedAt: at, expiresAt: at + lifetime, scope: ["read"])
  }

  static func machine(_ grant: Grant = .refreshToken, refreshToken: String? = "rt1", needsLogin: Bool = false)
    -> Machine
  {
    let settings = Machine.Settings(
      name: "pv", grant: grant, policy: RefreshPolicy(refreshAt: 0.8, jitter: 0, minValid: 30),
      minValidKey: "providers.pv.min_valid", scopeIdleTimeout: 900, defaultScopes: base)
    return Machine(settings: settings, credential: .init(refreshToken: refreshToken, needsLogin: needsLogin))
  }

  // MARK: Encoding

  @Test func roundTripKeepsEveryField() throws {
    let never = Token(
      accessToken: "k\"\\\n", tokenType: "bearer", issuedAt: Self.t0 + 0.25, expiresAt: nil, scope: [])
    let handover = TokenHandover(entries: [
      .init(provider: "pv", identity: Self.identity, scopes: Self.base, token: Self.token("at1")),
      .init(
        provider: "pv", identity: Self.identity, scopes: Self.other,
        token: Token(
          accessToken: "at2", tokenType: "Bearer", issuedAt: Self.t0, expiresAt: Self.t0 + 60.5,
          scope: ["read", "write"])),
      .init(
        provider: "api", identity: CredentialIdentity(fingerprint: "f2", seed: nil, key: "k1"),
        scopes: ScopeSet([]),
        token: never),
    ])
    #expect(try TokenHandover.decode(handover.encoded()) == handover)
  }

  @Test func tokensGoOnlyToTheSameProviderAndIdentity() {
    let handover = TokenHandover(entries: [
      .init(provider: "pv", identity: Self.identity, scopes: Self.base, token: Self.token("at1")),
      .init(provider: "other", identity: Self.identity, scopes: Self.base, token: Self.token("at2")),
    ])
    #expect(handover.tokens(provider: "pv", identity: Self.identity) == [Self.base: Self.token("at1")])
    // a new token_url/client/user/grant, a new seed refresh token, a new api key: nothing
    for changed in [
      CredentialIdentity(fingerprint: "f9", seed: "s1", key: nil),
      CredentialIdentity(fingerprint: "f1", seed: "s2", key: nil),
      CredentialIdentity(fingerprint: "f1", seed: nil, key: nil),
      CredentialIdentity(fingerprint: "f1", seed: "s1", key: "k"),
    ] {
      #expect(handover.tokens(provider: "pv", identity: changed).isEmpty, "\(changed)")
    }
  }

  @Test(arguments: [
    ("", "not JSON"),
    ("[]", "not JSON"),
    (#"{"format":2,"tokens":[]}"#, "format 2"),
    (#"{"format":1}"#, "no token list"),
    (
      #"{"format":1,"tokens":[{"provider":"pv","identity":"f","scopes":[],"access_token":"SECRET-AT"}]}"#,
      "token 1"
    ),
  ])
  func damagedHandoversAreRefusedWithoutQuotingThem(text: String, says: String) {
    #expect {
      try TokenHandover.decode(Array(text.utf8))
    } throws: { error in
      let message = "\(error)"
      return message.contains(says) && !message.contains("SECRET")
    }
  }

  @Test func anOversizedHandoverIsRefused() {
    #expect(throws: TokenHandover.Failure.self) {
      try TokenHandover.decode([UInt8](repeating: 0x20, count: TokenHandover.maxBytes + 1))
    }
  }

  // MARK: The machine starts from it

  @Test func aServableDefaultTokenIsPublishedAndScheduledWithNoRequest() {
    var m = Self.machine()
    let at1 = Self.token("at1", at: Self.t0 - 100)
    let actions = m.start(now: Self.t0, restored: [Self.base: at1])
    // refresh at 80 % of its 1000 s lifetime, from when it was issued
    #expect(actions == [.publish(Self.base, at1), .schedule(Self.base, at: Self.t0 + 700)])
    #expect(m.firstAttemptDone)
    #expect(m.state(now: Self.t0) == .ok)
    #expect(m.defaultSlot?.lastRefresh == Self.t0 - 100)
    #expect(m.isIdle)
  }

  @Test func otherScopeSetsComeBackBesideTheDefault() {
    var m = Self.machine()
    let at1 = Self.token("at1")
    let at2 = Self.token("at2")
    let actions = m.start(now: Self.t0, restored: [Self.other: at2, Self.base: at1])
    #expect(
      actions == [
        .publish(Self.base, at1), .schedule(Self.base, at: Self.t0 + 800),
        .publish(Self.other, at2), .schedule(Self.other, at: Self.t0 + 800),
      ])
    #expect(m.slots.count == 2)
  }

  @Test func aTokenNoLongerServableIsDroppedAndTheDefaultFetched() {
    var m = Self.machine()
    // 20 s left, min_valid 30
    let old = Self.token("old", at: Self.t0 - 980)
    #expect(
      m.start(now: Self.t0, restored: [Self.base: old]) == [
        .cancelTimer(Self.base), .send(Self.base, .refresh("rt1")),
      ])
  }

  @Test func onlyAnotherScopeSetRestoredStillFetchesTheDefault() {
    var m = Self.machine()
    let at2 = Self.token("at2")
    #expect(
      m.start(now: Self.t0, restored: [Self.other: at2]) == [
        .publish(Self.other, at2), .schedule(Self.other, at: Self.t0 + 800),
        .cancelTimer(Self.base), .send(Self.base, .refresh("rt1")),
      ])
    #expect(!m.firstAttemptDone)
  }

  @Test func aProviderThatNeedsALoginServesNothingHandedOver() {
    var m = Self.machine(needsLogin: true)
    #expect(m.start(now: Self.t0, restored: [Self.base: Self.token("at1")]) == [])
    #expect(m.state(now: Self.t0) == .needsLogin)
    var loggedOut = Self.machine(refreshToken: nil)
    #expect(loggedOut.start(now: Self.t0, restored: [Self.base: Self.token("at1")]) == [])
  }
}

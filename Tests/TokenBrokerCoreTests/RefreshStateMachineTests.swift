import Testing
import TokenBrokerCore

/// Every transition of the refresh state machine, as events in and actions out, on a
/// clock that is just a number.
@Suite struct RefreshStateMachineTests {
  typealias Machine = RefreshStateMachine
  typealias Action = RefreshStateMachine.Action

  static let t0 = 1_800_000_000.0
  static let base = ScopeSet(["read"])
  static let other = ScopeSet(["read", "write"])

  static func machine(
    _ grant: Grant = .clientCredentials, refreshToken: String? = nil, needsLogin: Bool = false,
    minValid: Double = 30
  ) -> Machine {
    var policy = RefreshPolicy(refreshAt: 0.8, jitter: 0, minValid: minValid)
    policy.backoffCap = 300
    let settings = Machine.Settings(
      name: "pv", grant: grant, policy: policy, minValidKey: "providers.pv.min_valid", scopeIdleTimeout: 900,
      defaultScopes: base)
    return Machine(settings: settings, credential: .init(refreshToken: refreshToken, needsLogin: needsLogin))
  }

  static func token(_ value: String = "at1", at: Double = t0, lifetime: Double = 1000) -> Token {
    Token(accessToken: value, tokenType: "Bearer", issuedAt: at, expiresAt: at + lifetime, scope: ["read"])
  }

  static let transient = UpstreamFailure(.retryLater, status: 503, message: "down")
  static let rejected = UpstreamFailure(
    .refreshTokenRejected, status: 400, code: "invalid_grant", message: "no")

  // MARK: Start

  @Test func clientCredentialsStartsByFetchingTheDefaultToken() {
    var m = Self.machine()
    #expect(m.start(now: Self.t0) == [.cancelTimer(Self.base), .send(Self.base, .primary)])
    #expect(m.state(now: Self.t0) == .refreshing)
  }

  @Test func refreshTokenGrantPresentsItsRefreshToken() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    #expect(m.start(now: Self.t0) == [.cancelTimer(Self.base), .send(Self.base, .refresh("rt1"))])
  }

  @Test func refreshTokenGrantWithoutOneNeedsALoginAndSendsNothing() {
    var m = Self.machine(.refreshToken)
    #expect(m.start(now: Self.t0) == [])
    #expect(m.state(now: Self.t0) == .needsLogin)
    #expect(m.firstAttemptDone)
    #expect(m.lastError?.contains("providers.pv.refresh_token") == true)
  }

  @Test func apiKeyIsPublishedAtOnce() {
    var m = Self.machine(.apiKey)
    let key = Token(accessToken: "k", tokenType: "", issuedAt: Self.t0, expiresAt: nil, scope: [])
    #expect(m.start(now: Self.t0, apiKey: key) == [.publish(Self.base, key)])
    #expect(m.state(now: Self.t0 + 1e9) == .ok)
  }

  // MARK: Answers

  @Test func aTokenIsPublishedScheduledAtRefreshAtAndHandedToWaiters() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    let wanted = m.tokenWanted(Self.base, requested: nil, waiter: 7, now: Self.t0)
    #expect(wanted.answer == nil && wanted.actions == [])
    let t = Self.token()
    let actions = m.upstreamAnswered(Self.base, .token(t), rotated: nil, now: Self.t0, random: 0.5)
    #expect(
      actions == [
        .publish(Self.base, t), .schedule(Self.base, at: Self.t0 + 800), .answer(waiter: 7, .success(t)),
      ])
    #expect(m.state(now: Self.t0) == .ok)
    #expect(m.isIdle)
  }

  @Test func aRotatedRefreshTokenIsPersistedBeforeAnythingIsPublishedOrServed() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0)
    let t = Self.token()
    let first = m.upstreamAnswered(Self.base, .token(t), rotated: "rt2", now: Self.t0, random: 0.5)
    #expect(first == [.persist(.init(refreshToken: "rt2", needsLogin: false))])
    #expect(!m.isIdle)
    // A caller arriving meanwhile waits: nothing is served before the write.
    #expect(m.tokenWanted(Self.base, requested: nil, waiter: 2, now: Self.t0).answer == nil)
    let after = m.persisted(ok: true, now: Self.t0, random: 0.5)
    #expect(
      after == [
        .publish(Self.base, t), .schedule(Self.base, at: Self.t0 + 800), .answer(waiter: 1, .success(t)),
        .answer(waiter: 2, .success(t)),
      ])
    #expect(m.credential.refreshToken == "rt2")
  }

  @Test func aRotatedRefreshTokenInARefusedAnswerIsStillKept() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    let bad = UpstreamFailure(.retryLater, status: 200, message: "token response expires_in is not positive")
    #expect(
      m.upstreamAnswered(Self.base, .failure(bad), rotated: "rt2", now: Self.t0, random: 0.5) == [
        .persist(.init(refreshToken: "rt2", needsLogin: false))
      ])
    let after = m.persisted(ok: true, now: Self.t0, random: 0)
    #expect(after == [.schedule(Self.base, at: Self.t0 + 1)])
    // The retry presents the new refresh token, never the retired one.
    #expect(
      m.timerFired(Self.base, now: Self.t0 + 1, cacheLastUsed: nil).last == .send(Self.base, .refresh("rt2")))
  }

  @Test func aFailedWriteKeepsTheTokenInMemoryAndShowsDegraded() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: "rt2", now: Self.t0, random: 0.5)
    _ = m.persisted(ok: false, now: Self.t0, random: 0.5)
    #expect(m.credential.refreshToken == "rt2")
    #expect(m.state(now: Self.t0) == .degraded)
  }

  @Test func oneRequestAtATimeAndTheNextPresentsTheRotatedToken() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    let w = m.tokenWanted(Self.other, requested: nil, waiter: 1, now: Self.t0)
    #expect(w.actions == [.cancelTimer(Self.other)])  // queued, not sent
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: "rt2", now: Self.t0, random: 0.5)
    let after = m.persisted(ok: true, now: Self.t0, random: 0.5)
    #expect(after.last == .send(Self.other, .refresh("rt2")))
  }

  @Test func theDefaultScopeSetIsSentBeforeQueuedSubsets() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    _ = m.tokenWanted(Self.other, requested: nil, waiter: 1, now: Self.t0)  // on the wire
    let third = ScopeSet(["write"])
    _ = m.tokenWanted(third, requested: nil, waiter: 2, now: Self.t0)  // queued
    _ = m.timerFired(Self.base, now: Self.t0 + 800, cacheLastUsed: nil)  // queued, ahead of `third`
    let next = m.upstreamAnswered(Self.other, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    #expect(next.last == .send(Self.base, .primary))
  }

  // MARK: Rejection

  @Test func aRejectedRefreshTokenOfARefreshTokenGrantNeedsALogin() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 3, now: Self.t0)
    let actions = m.upstreamAnswered(
      Self.base, .failure(Self.rejected), rotated: nil, now: Self.t0, random: 0.5)
    #expect(actions.first == .persist(.init(refreshToken: nil, needsLogin: true)))
    #expect(actions.contains(.answer(waiter: 3, .failure(.needsLogin(message: m.needsLoginMessage)))))
    #expect(!actions.contains { if case .send = $0 { true } else { false } })
    #expect(m.state(now: Self.t0) == .needsLogin)
    #expect(
      m.tokenWanted(Self.base, requested: nil, waiter: 4, now: Self.t0).answer
        == .failure(.needsLogin(message: m.needsLoginMessage)))
  }

  @Test func aRejectedRefreshTokenOfAPasswordGrantFallsBackToThePassword() {
    var m = Self.machine(.password, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    let actions = m.upstreamAnswered(
      Self.base, .failure(Self.rejected), rotated: nil, now: Self.t0, random: 0.5)
    #expect(actions == [.persist(.init(refreshToken: nil, needsLogin: false)), .send(Self.base, .primary)])
  }

  // MARK: Failures and backoff

  @Test func aTransientFailureBacksOffAndServesTheStillValidToken() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    let t = Self.token()
    _ = m.upstreamAnswered(Self.base, .token(t), rotated: nil, now: Self.t0, random: 0.5)
    _ = m.timerFired(Self.base, now: Self.t0 + 800, cacheLastUsed: nil)
    _ = m.tokenWanted(Self.base, requested: 500, waiter: 1, now: Self.t0 + 800)  // 200 s left < 500: waits
    let actions = m.upstreamAnswered(
      Self.base, .failure(Self.transient), rotated: nil, now: Self.t0 + 800, random: 1)
    #expect(actions.first == .schedule(Self.base, at: Self.t0 + 801))
    #expect(
      actions.contains(
        .answer(waiter: 1, .failure(.unavailable(message: "pv: upstream 503: down", retryAfter: 1)))))
    #expect(m.state(now: Self.t0 + 800) == .degraded)
    // In backoff a caller wanting more than is left is refused without a request.
    let w = m.tokenWanted(Self.base, requested: 500, waiter: 2, now: Self.t0 + 800.5)
    #expect(w.answer == .failure(.unavailable(message: "pv: upstream 503: down", retryAfter: 1)))
    #expect(w.actions == [])
    // ...while one content with what is left gets the token.
    #expect(m.tokenWanted(Self.base, requested: nil, waiter: 3, now: Self.t0 + 800.5).answer == .success(t))
  }

  @Test func withoutAValidTokenAFailureIsFailed() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .failure(Self.transient), rotated: nil, now: Self.t0, random: 0.5)
    #expect(m.state(now: Self.t0) == .failed)
    #expect(m.lastError == "upstream 503: down")
  }

  @Test func aTokenWithLessThanMinValidLeftIsNotOk() {
    var m = Self.machine(minValid: 30)
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(
      Self.base, .token(Self.token(lifetime: 100)), rotated: nil, now: Self.t0, random: 0.5)
    #expect(m.state(now: Self.t0 + 69) == .ok)
    #expect(m.state(now: Self.t0 + 71) == .pending)
  }

  // MARK: min_valid

  @Test func tokensThatNeverMeetMinValidMakeTheProviderFailedAndNameTheKey() {
    var m = Self.machine(minValid: 30)
    _ = m.start(now: Self.t0)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0)
    let actions = m.upstreamAnswered(
      Self.base, .token(Self.token(lifetime: 30)), rotated: nil, now: Self.t0, random: 0.5)
    #expect(!actions.contains { if case .publish = $0 { true } else { false } })
    #expect(actions.first == .schedule(Self.base, at: Self.t0 + 300))
    #expect(m.state(now: Self.t0) == .failed)
    let message = m.lastError ?? ""
    #expect(message.contains("providers.pv.min_valid"))
    #expect(actions.contains(.answer(waiter: 1, .failure(.misconfigured(message: message)))))
    #expect(
      m.tokenWanted(Self.base, requested: nil, waiter: 2, now: Self.t0 + 1).answer
        == .failure(.misconfigured(message: message)))
  }

  @Test func aReloadThatLowersMinValidMakesThemServable() {
    var m = Self.machine(minValid: 30)
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(
      Self.base, .token(Self.token(lifetime: 30)), rotated: nil, now: Self.t0, random: 0.5)
    var settings = m.settings
    settings.policy.minValid = 5
    let actions = m.reconfigure(settings, now: Self.t0, random: 0.5)
    #expect(actions == [.schedule(Self.base, at: Self.t0 + 24)])
    #expect(m.state(now: Self.t0) == .ok)
  }

  @Test func aCallerMinValidAboveHalfTheLifetimeIsRefusedWithoutARequest() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(
      Self.base, .token(Self.token(lifetime: 600)), rotated: nil, now: Self.t0, random: 0.5)
    let w = m.tokenWanted(Self.base, requested: 600, waiter: 1, now: Self.t0 + 1)
    #expect(w.actions == [])
    guard case .failure(.unavailable(let message, _))? = w.answer else {
      Issue.record("expected a refusal")
      return
    }
    #expect(message.contains("at most 300 s"))
    // Within half the lifetime a refresh is made first.
    let ok = m.tokenWanted(Self.base, requested: 300, waiter: 2, now: Self.t0 + 301)
    #expect(ok.answer == nil)
    #expect(ok.actions.last == .send(Self.base, .primary))
  }

  @Test func aReloadThatChangesTheRequestFetchesTheTokensAgainWithTheSameCredential() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    let actions = m.reconfigure(m.settings, tokensStale: true, now: Self.t0, random: 0.5)
    #expect(actions.first == .unpublish(Self.base))
    #expect(actions.last == .send(Self.base, .refresh("rt1")))
    #expect(m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0).answer == nil)
  }

  @Test func anAnswerToARequestAReloadReplacedIsNotServedButAskedAgain() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)  // on the wire with the old parameters
    _ = m.reconfigure(m.settings, tokensStale: true, now: Self.t0, random: 0.5)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0)
    let actions = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    #expect(actions == [.cancelTimer(Self.base), .send(Self.base, .primary)])
  }

  // MARK: Timers and scope sets

  @Test func anIdleScopeSetIsDroppedWhenItsTimerFires() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    _ = m.tokenWanted(Self.other, requested: nil, waiter: 1, now: Self.t0)
    _ = m.upstreamAnswered(Self.other, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    #expect(
      m.timerFired(Self.other, now: Self.t0 + 800, cacheLastUsed: Self.t0 + 500) == [
        .cancelTimer(Self.other), .send(Self.other, .primary),
      ])
    _ = m.upstreamAnswered(
      Self.other, .token(Self.token(at: Self.t0 + 800)), rotated: nil, now: Self.t0 + 800, random: 0.5)
    #expect(
      m.timerFired(Self.other, now: Self.t0 + 1600, cacheLastUsed: Self.t0 + 500) == [.unpublish(Self.other)])
    #expect(m.slots[Self.other] == nil)
  }

  @Test func scopeSetsAreCapped() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    for i in 1..<32 { _ = m.tokenWanted(ScopeSet(["s\(i)"]), requested: nil, waiter: i, now: Self.t0) }
    let over = m.tokenWanted(ScopeSet(["s99"]), requested: nil, waiter: 99, now: Self.t0)
    guard case .failure(.unavailable(let message, 60))? = over.answer else {
      Issue.record("expected a 503 with Retry-After 60")
      return
    }
    #expect(message.contains("32 scope sets"))
  }

  // MARK: Stop

  @Test func stopSendsNothingMoreButStillPersistsWhatTheLastAnswerBrought() {
    var m = Self.machine(.refreshToken, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0)
    let stop = m.stop()
    #expect(stop.first == .unpublish(nil))
    #expect(
      stop.contains(.answer(waiter: 1, .failure(.unavailable(message: "pv is restarting", retryAfter: 1)))))
    #expect(!m.isIdle)  // the request is still on the wire
    let answer = m.upstreamAnswered(
      Self.base, .token(Self.token()), rotated: "rt2", now: Self.t0, random: 0.5)
    #expect(answer == [.persist(.init(refreshToken: "rt2", needsLogin: false))])
    #expect(m.persisted(ok: true, now: Self.t0, random: 0.5) == [])
    #expect(m.isIdle)
    #expect(m.timerFired(Self.base, now: Self.t0 + 800, cacheLastUsed: nil) == [])
  }

  // MARK: Admin refresh, reconfigure, and the remaining edges

  @Test func anAdminRefreshJoinsTheRequestOnTheWireAndOtherwiseSendsOne() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    #expect(m.refreshWanted(now: Self.t0) == [])  // the first fetch is on the wire
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    #expect(m.refreshWanted(now: Self.t0 + 10) == [.cancelTimer(Self.base), .send(Self.base, .primary)])
  }

  @Test func aReloadWithNewDefaultScopesFetchesThem() {
    var m = Self.machine()
    _ = m.start(now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    var settings = m.settings
    settings.defaultScopes = Self.other
    let actions = m.reconfigure(settings, now: Self.t0, random: 0.5)
    #expect(actions == [.cancelTimer(Self.other), .send(Self.other, .primary)])
  }

  @Test func nothingIsScheduledOrSentWhileALoginIsNeededOrAfterStop() {
    var m = Self.machine(.refreshToken)
    _ = m.start(now: Self.t0)
    #expect(m.timerFired(Self.base, now: Self.t0 + 1, cacheLastUsed: nil) == [])
    #expect(m.refreshWanted(now: Self.t0 + 1) == [])
    var running = Self.machine()
    _ = running.start(now: Self.t0)
    _ = running.upstreamAnswered(Self.base, .token(Self.token()), rotated: nil, now: Self.t0, random: 0.5)
    _ = running.stop()
    let late = running.tokenWanted(Self.other, requested: nil, waiter: 1, now: Self.t0)
    #expect(late.answer == .failure(.unavailable(message: "pv is restarting", retryAfter: 1)))
    #expect(late.actions == [])
  }

  @Test func anAnswerWaitsForEveryWriteBeforeItIsServed() {
    // A password grant's refresh token is rejected (the fallback forgets it: one write), then
    // the password grant's answer brings a new refresh token (a second write).
    var m = Self.machine(.password, refreshToken: "rt1")
    _ = m.start(now: Self.t0)
    _ = m.tokenWanted(Self.base, requested: nil, waiter: 1, now: Self.t0)
    _ = m.upstreamAnswered(Self.base, .failure(Self.rejected), rotated: nil, now: Self.t0, random: 0.5)
    let t = Self.token()
    #expect(
      m.upstreamAnswered(Self.base, .token(t), rotated: "rt2", now: Self.t0, random: 0.5) == [
        .persist(.init(refreshToken: "rt2", needsLogin: false))
      ])
    #expect(m.persisted(ok: true, now: Self.t0, random: 0.5) == [])  // the first write only
    let after = m.persisted(ok: true, now: Self.t0, random: 0.5)
    #expect(after.contains(.answer(waiter: 1, .success(t))))
    #expect(m.isIdle)
  }

  @Test func anActionShownAnywhereHoldsNoRefreshToken() {
    let actions: [Action] = [
      .send(Self.base, .refresh("rt_secret_1")),
      .persist(.init(refreshToken: "rt_secret_1", needsLogin: false)),
    ]
    #expect(!"\(actions)".contains("rt_secret_1"), "\(actions)")
  }
}

import Testing
import TokenBrokerCore

/// How a login's exchange and a logout go through the refresh machine: one request at a
/// time for the credential, the new refresh token on disk before its token is served.
@Suite struct RefreshStateMachineLoginTests {
  typealias M = RefreshStateMachineTests
  static let code = RequestGrant.authorizationCode(
    code: "c1", verifier: "v1", redirectURI: "http://127.0.0.1:5/cb")

  static func needingLogin() -> RefreshStateMachine {
    var settings = M.machine(.authorizationCode).settings
    settings.loginCommand = "tokenctl login pv"
    var m = RefreshStateMachine(settings: settings, credential: .init(refreshToken: nil, needsLogin: true))
    _ = m.start(now: M.t0)
    return m
  }

  @Test func aLoginPersistsItsRefreshTokenBeforeItsTokenIsServed() {
    var m = Self.needingLogin()
    #expect(m.state(now: M.t0) == .needsLogin)
    #expect(m.lastError == "pv needs a login: run tokenctl login pv")
    #expect(m.loginWanted(Self.code, now: M.t0) == [.send(M.base, Self.code)])
    let token = M.token()
    // Nothing is published or answered until the write of the new refresh token ends.
    #expect(
      m.upstreamAnswered(M.base, .token(token), rotated: "rt9", now: M.t0, random: 0.5) == [
        .persist(.init(refreshToken: "rt9", needsLogin: false))
      ])
    let after = m.persisted(ok: true, now: M.t0, random: 0.5)
    #expect(after.first == .loginFinished(nil))
    #expect(after.contains(.publish(M.base, token)))
    #expect(after.contains(.schedule(M.base, at: M.t0 + 800)))
    #expect(m.state(now: M.t0) == .ok)
    #expect(m.credential == .init(refreshToken: "rt9", needsLogin: false))
    // The next refresh presents the login's refresh token.
    #expect(
      m.timerFired(M.base, now: M.t0 + 800, cacheLastUsed: nil).contains(.send(M.base, .refresh("rt9"))))
  }

  @Test func aLoginWaitsForTheRequestOnTheWireAndGoesFirst() {
    var m = M.machine(.authorizationCode, refreshToken: "rt1")
    _ = m.start(now: M.t0)
    _ = m.tokenWanted(M.other, requested: nil, waiter: 1, now: M.t0)
    #expect(m.loginWanted(Self.code, now: M.t0) == [])
    // The refresh on the wire answers; the login's exchange is next, before the queued scope set.
    let next = m.upstreamAnswered(M.base, .token(M.token()), rotated: nil, now: M.t0, random: 0.5)
    #expect(next.last == .send(M.base, Self.code))
    #expect(!next.contains(.send(M.other, .refresh("rt1"))))
  }

  @Test func aRefusedCodeLeavesTheCredentialAsItWas() {
    var m = Self.needingLogin()
    _ = m.loginWanted(Self.code, now: M.t0)
    let refused = UpstreamFailure(
      .refreshTokenRejected, status: 400, code: "invalid_grant", message: "bad code")
    #expect(
      m.upstreamAnswered(M.base, .failure(refused), rotated: nil, now: M.t0, random: 0.5) == [
        .loginFinished(refused)
      ])
    #expect(m.state(now: M.t0) == .needsLogin)
    #expect(m.credential == .init(refreshToken: nil, needsLogin: true))
    #expect(m.isIdle)
  }

  @Test func logoutForgetsTheCredentialDurablyAndServesNothing() {
    var m = M.machine(.authorizationCode, refreshToken: "rt1")
    _ = m.start(now: M.t0)
    _ = m.upstreamAnswered(M.base, .token(M.token()), rotated: nil, now: M.t0, random: 0.5)
    let actions = m.loggedOut(now: M.t0 + 1)
    #expect(actions.first == .unpublish(nil))
    #expect(actions.contains(.persist(.init(refreshToken: nil, needsLogin: true))))
    #expect(actions.contains(.cancelTimer(M.base)))
    #expect(m.state(now: M.t0 + 1) == .needsLogin)
    let (answer, sent) = m.tokenWanted(M.base, requested: nil, waiter: 2, now: M.t0 + 1)
    #expect(sent == [])
    guard case .failure(.needsLogin) = answer else {
      Issue.record("expected needs_login, got \(String(describing: answer))")
      return
    }
  }

  @Test func aStopEndsALoginNotYetSent() {
    var m = M.machine(.authorizationCode, refreshToken: "rt1")
    _ = m.start(now: M.t0)
    _ = m.loginWanted(Self.code, now: M.t0)
    let actions = m.stop()
    #expect(
      actions.contains {
        if case .loginFinished(let f?) = $0 { return f.kind == .retryLater } else { return false }
      })
  }
}

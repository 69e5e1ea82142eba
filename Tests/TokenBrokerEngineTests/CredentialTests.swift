import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// A credential is used by one engine at a time and only under the identity it was issued
/// to: reloads hand it over, identity changes never see it, refused answers never lose it.
@Suite struct CredentialTests {
  static func loaded(_ h: BrokerHarness, _ providers: [ProviderConfig], _ secrets: [String: ResolvedSecrets])
    -> LoadedConfig
  {
    let config = BrokerConfig(broker: h.config.broker, providers: providers)
    return LoadedConfig(
      config: config, secrets: secrets, access: AccessResolver.resolve(config).0, warnings: [])
  }

  static func presentedRefreshTokens(_ upstream: FakeUpstream) -> [String] {
    upstream.requests.compactMap { $0.json["refresh_token"] ?? $0.form["refresh_token"] }
  }

  @Test func aReloadThatEditsAllowDuringARotationPresentsEachRefreshTokenOnce() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.rotating("pv", for: upstream, seed: "rt_seed_reload")
    let (h, g) = try await BrokerHarness.startGated(providers: [p], secrets: ["pv": secrets], clock: clock)
    await h.firstAttempts()
    let engine = try #require(h.broker.engine(named: "pv"))

    g.close()
    let refresh = Task { await engine.refreshNow() }
    await g.awaitArrivals(2)  // the first fetch, then this refresh: on the wire, held
    var edited = p
    edited.allow = [.uid(1001)]
    let summary = await h.broker.apply(Self.loaded(h, [edited], ["pv": secrets]))
    g.open()
    _ = await refresh.value
    await h.broker.settle()

    #expect(summary.changed == ["pv"])
    #expect(h.broker.engine(named: "pv") === engine)
    let presented = Self.presentedRefreshTokens(upstream)
    #expect(presented.count == Set(presented).count, "a refresh token was presented twice")
    #expect(!upstream.familyRevoked)
    #expect(await h.status("pv")?.state == .ok)
    #expect(h.broker.config.provider(named: "pv")?.allow == [.uid(1001)])
    await h.shutdown()
    await upstream.stop()
  }

  @Test func aNewTokenURLNeverReceivesTheOldIssuersRefreshToken() async throws {
    let clock = ManualClock()
    let a = FakeUpstream(.formPassword, now: { clock.now() })
    let b = FakeUpstream(.formPassword, now: { clock.now() })
    try await a.start()
    try await b.start()
    let (p, secrets) = SeedProviders.config("crm", for: a, grant: .password)
    let dir = try TempDirectory.make("tb-ident")
    let first = try await BrokerHarness.start(
      providers: [p], secrets: ["crm": secrets], clock: clock, stateDir: dir)
    await first.firstAttempts()
    let issuedByA = try #require(a.issuedRefreshTokens.last)
    #expect(try StateStore(directory: dir).load("crm")?.refreshToken == issuedByA)

    // The same provider name, moved to another issuer: by reload...
    var moved = p
    moved.tokenURL = b.tokenURL
    await first.broker.apply(Self.loaded(first, [moved], ["crm": secrets]))
    await first.broker.settle()
    #expect(b.requests.allSatisfy { $0.form["refresh_token"] != issuedByA })
    #expect(b.requests.first?.form["grant_type"] == "password")
    await first.shutdown()

    // ...and by restart, with the state file still naming A's credential.
    let before = b.requestCount
    let restarted = try await BrokerHarness.start(
      providers: [moved], secrets: ["crm": secrets], clock: clock, stateDir: dir)
    await restarted.firstAttempts()
    #expect(b.requests.dropFirst(before).allSatisfy { $0.form["refresh_token"] != issuedByA })
    #expect(await restarted.status("crm")?.state == .ok)
    await restarted.shutdown()
    await a.stop()
    await b.stop()
  }

  @Test func aStateFileOfAnotherIdentityIsSetAsideNotUsed() async throws {
    let clock = ManualClock()
    let a = FakeUpstream(.formPassword, now: { clock.now() })
    try await a.start()
    let (p, secrets) = SeedProviders.config("crm", for: a, grant: .password)
    let dir = try TempDirectory.make("tb-aside")
    try StateStore(directory: dir).save(
      ProviderStateRecord(
        refreshToken: "rt_of_someone_else", seed: nil, needsLogin: false, updatedAt: 0, identity: "0123abcd"),
      for: "crm")
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["crm": secrets], clock: clock, stateDir: dir)
    await h.firstAttempts()
    #expect(a.requests.allSatisfy { $0.form["refresh_token"] != "rt_of_someone_else" })
    let files = try FileManager.default.contentsOfDirectory(atPath: dir)
    #expect(files.contains { $0.hasPrefix("crm.state.superseded-") })
    #expect(h.logs.events("state_superseded").count == 1)
    await h.shutdown()
    await a.stop()
  }

  @Test func aRotatedRefreshTokenInAnAnswerTheBrokerRefusesIsKept() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.rotating("pv", for: upstream, seed: "rt_seed_m1")
    let dir = try TempDirectory.make("tb-m1")
    let (h, g) = try await BrokerHarness.startGated(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await h.firstAttempts()
    // The next answer carries a new refresh token but an expires_in the broker refuses.
    g.rewriteNext { r in
      var r = r
      let text = String(decoding: r.body, as: UTF8.self)
      r.body = Array(text.replacingOccurrences(of: #""expires_in":"#, with: #""expires_in":0,"was":"#).utf8)
      return r
    }
    _ = await h.broker.engine(named: "pv")?.refreshNow()
    let kept = try #require(upstream.issuedRefreshTokens.last)
    #expect(try StateStore(directory: dir).load("pv")?.refreshToken == kept)
    #expect(await h.status("pv")?.state == .degraded)
    // The retry presents the kept token, and the grant survives.
    await clock.advanceToNextTimer()
    #expect(Self.presentedRefreshTokens(upstream).last == kept)
    #expect(!upstream.familyRevoked)
    #expect(await h.status("pv")?.state == .ok)
    await h.shutdown()
    await upstream.stop()
  }

  @Test func aStoppedEngineStillPersistsTheRotationOnTheWire() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.rotating("pv", for: upstream, seed: "rt_seed_stop")
    let dir = try TempDirectory.make("tb-stop")
    let (h, g) = try await BrokerHarness.startGated(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await h.firstAttempts()
    let engine = try #require(h.broker.engine(named: "pv"))
    g.close()
    let refresh = Task { await engine.refreshNow() }
    await g.awaitArrivals(2)
    await engine.stop()
    g.open()
    await engine.settle()
    _ = await refresh.value
    #expect(try StateStore(directory: dir).load("pv")?.refreshToken == upstream.issuedRefreshTokens.last)
    await h.shutdown()
    await upstream.stop()
  }
}

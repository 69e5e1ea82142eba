import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// The refresh schedule on a manual clock: refresh_at, backoff, Retry-After, failed states.
@Suite struct ScheduleTests {
  @Test func refreshesOnceRefreshAtOfTheLifetimeHasPassed() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 100
    var settings = BrokerSettings.testDefaults
    settings.minValid = 5
    try await Single.with(.energy, upstreamSettings: up, settings: settings) { s async throws in
      let start = s.clock.now()
      #expect(s.clock.pendingDeadlines == [start + 80])
      await s.clock.advance(by: 79)
      #expect(s.upstream.requestCount == 1)
      await s.clock.advance(by: 1)
      #expect(s.upstream.requestCount == 2)
      #expect(s.clock.pendingDeadlines == [start + 160])
      let token = try await s.harness.get("/v1/token/p").json["access_token"] as? String
      #expect(token == s.upstream.issuedAccessTokens[1])
    }
  }

  @Test func jitterMovesTheRefreshWithinItsBand() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 1000
    var settings = BrokerSettings.testDefaults
    settings.refreshJitter = 0.05
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, settings: up, now: { clock.now() })
    try await upstream.start()
    defer { Task { await upstream.stop() } }
    for (random, expected) in [(0.0, 750.0), (1.0, 850.0)] {
      let (p, secrets) = SeedProviders.config("p", for: upstream)
      let h = try await BrokerHarness.start(
        providers: [p], secrets: ["p": secrets], settings: settings, clock: clock, random: random)
      await h.firstAttempts()
      #expect(clock.pendingDeadlines == [clock.now() + expected])
      await h.shutdown()
    }
  }

  @Test func neverServesATokenWithLessThanMinValidLeft() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 100
    var settings = BrokerSettings.testDefaults
    settings.minValid = 30
    try await Single.with(.energy, upstreamSettings: up, settings: settings) { s async throws in
      // The schedule keeps min_valid in hand: refresh at 70 s, not 80 s.
      #expect(s.clock.pendingDeadlines == [s.clock.now() + 70])
      s.upstream.failAlways(.status(503))
      await s.clock.advance(by: 70)
      #expect(await s.status().state == .degraded)
      // 29 s left < 30 s min_valid: 503, never the stale token, and status `failed`.
      await s.clock.advance(by: 1)
      #expect(await s.status().state == .failed)
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 503)
      #expect(r.json["access_token"] == nil)
      #expect(r.headers["retry-after"] != nil)
    }
  }

  @Test func callerMinValidTriggersARefreshFirst() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 600
    try await Single.with(.energy, upstreamSettings: up) { s async throws in
      await s.clock.advance(by: 320)
      #expect(s.upstream.requestCount == 1)
      // 280 s left, 290 asked (within half the lifetime): a refresh first.
      let r = try await s.harness.get("/v1/token/p?min_valid=290")
      #expect(r.status == 200)
      #expect(s.upstream.requestCount == 2)
      #expect(r.json["expires_in"] as? Int == 600)
      // A caller asking for more than any token lives, or for as long as one lives (every
      // request would be a refresh), gets 503 and no upstream request.
      for asked in [3600, 601] {
        let tooMuch = try await s.harness.get("/v1/token/p?min_valid=\(asked)")
        #expect(tooMuch.status == 503)
      }
      await s.clock.advance(by: 310)  // 290 s left
      let overHalf = try await s.harness.get("/v1/token/p?min_valid=301")
      #expect(overHalf.status == 503)
      #expect(s.upstream.requestCount == 2)
    }
  }

  @Test func transientFailuresBackOffExponentiallyAndKeepServingWhileValid() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 3600
    try await Single.with(.energy, upstreamSettings: up) { s async throws in
      s.upstream.failAlways(.status(502))
      await s.clock.advance(by: 2880)  // 80 %: first failure
      var gaps: [Double] = []
      var last = s.clock.now()
      for _ in 0..<10 {
        await s.clock.advanceToNextTimer()
        gaps.append(s.clock.now() - last)
        last = s.clock.now()
      }
      // random = 0.5: half of 1, 2, 4, ... (at least 1 s), capped at 300 s → 150 s.
      #expect(gaps == [1, 1, 2, 4, 8, 16, 32, 64, 128, 150])
      let status = await s.status()
      #expect(status.state == .degraded)
      #expect(status.failures == 11)
      #expect(status.lastError == "upstream 502: upstream server error (502)")
      #expect(try await s.harness.get("/v1/token/p").status == 200)
      // Healed: the next attempt succeeds and the state is ok again.
      s.upstream.failAlways(nil)
      await s.clock.advanceToNextTimer()
      #expect(await s.status().state == .ok)
      #expect(await s.status().failures == 0)
    }
  }

  @Test func retryAfterSecondsIsHonouredOn429And503() async throws {
    try await Single.with(.energy) { s async throws in
      s.upstream.failNext(.status(429, headers: ["Retry-After": "120"]))
      let before = s.clock.now()
      await s.clock.advance(by: 2880)
      #expect(s.clock.pendingDeadlines == [before + 2880 + 120])
      s.upstream.failNext(.status(503, headers: ["Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"]))
      await s.clock.advanceToNextTimer()
      // An HTTP date far away is capped at one hour.
      #expect(s.clock.pendingDeadlines == [s.clock.now() + 3600])
      #expect(await s.status().lastError?.hasPrefix("upstream 503") == true)
    }
  }

  @Test func rejectedClientCredentialsFailAndRetryOnlyAtTheCap() async throws {
    try await Single.with(.energy, tweak: { _, secrets in secrets.clientSecret = "not-the-secret" }) {
      s async throws in
      let status = await s.status()
      #expect(status.state == .failed)
      #expect(status.lastError == "upstream 401 invalid_client: bad credentials")
      #expect(s.clock.pendingDeadlines == [s.clock.now() + 300])
      await s.clock.advance(by: 299)
      #expect(s.upstream.requestCount == 1)
      await s.clock.advance(by: 1)
      #expect(s.upstream.requestCount == 2)
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 503)
      // Callers do not hammer the upstream while it refuses us.
      _ = try await s.harness.get("/v1/token/p")
      #expect(s.upstream.requestCount == 2)
    }
  }

  @Test func idleScopeSetsAreDroppedAndUsedOnesKeptFresh() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 1000
    var settings = BrokerSettings.testDefaults
    settings.scopeIdleTimeout = 900
    try await Single.with(
      .energy, scopes: ["read"], allowed: ["read", "write", "admin"], upstreamSettings: up, settings: settings
    ) { s async throws in
      #expect(try await s.harness.get("/v1/token/p?scope=read%20write").status == 200)
      #expect(try await s.harness.get("/v1/token/p?scope=admin").status == 200)
      #expect(await s.status().cachedScopeSets == 3)
      await s.clock.advance(by: 500)
      // Keep "read write" in use from the cached fast path.
      #expect(try await s.harness.get("/v1/token/p?scope=write+read").status == 200)
      await s.clock.advance(by: 300)  // 800: refresh time for all three
      #expect(await s.status().cachedScopeSets == 3)
      await s.clock.advance(by: 400)
      #expect(try await s.harness.get("/v1/token/p?scope=read+write").status == 200)
      await s.clock.advance(by: 400)  // 1600: admin unused for 1600 s > 900 s → dropped; read write refreshed
      #expect(await s.status().cachedScopeSets == 2)
      let scopes = s.upstream.requests.map { $0.form["scope"] ?? "" }
      #expect(scopes.filter { $0 == "admin" }.count == 2)
      #expect(scopes.filter { $0 == "read write" }.count == 3)
    }
  }

  @Test func scopeOutsideAllowedScopesIsRefused() async throws {
    try await Single.with(.energy, scopes: ["read"], allowed: ["read", "write"]) { s async throws in
      let r = try await s.harness.get("/v1/token/p?scope=read%20delete")
      #expect(r.status == 400)
      #expect((r.json["error"] as? [String: Any])?["code"] as? String == "invalid_scope")
      #expect(s.upstream.requestCount == 1)
    }
  }
}

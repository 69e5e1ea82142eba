import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Rotating refresh tokens: persisted durably before use, surviving restarts,
/// falling back to the provider's own grant, and needs_login when lost.
@Suite struct RotationTests {
  static func refreshProvider(_ upstream: FakeUpstream, seed: String) -> (ProviderConfig, ResolvedSecrets) {
    var (p, secrets) = SeedProviders.config("pv", for: upstream, grant: .refreshToken)
    secrets.refreshToken = seed
    p.clientAuth = .none
    return (p, secrets)
  }

  @Test func rotatedRefreshTokenIsPersistedWithMode0600AndSurvivesARestart() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    defer { Task { await upstream.stop() } }
    upstream.seedRefreshToken("rt_seed_1")
    let (p, secrets) = Self.refreshProvider(upstream, seed: "rt_seed_1")
    let dir = try TempDirectory.make("tb-rot")

    let first = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await first.firstAttempts()
    #expect(await first.status("pv")?.state == .ok)
    let rotated = try #require(upstream.issuedRefreshTokens.last)
    #expect(rotated != "rt_seed_1")
    let file = dir + "/pv.state"
    var st = stat()
    #expect(stat(file, &st) == 0)
    #expect(st.st_mode & 0o777 == 0o600)
    let record = try #require(try StateStore(directory: dir).load("pv"))
    #expect(record.refreshToken == rotated)
    #expect(!FileManager.default.fileExists(atPath: file + ".tmp"))
    #expect(first.leakedSecrets(upstreams: [upstream]).isEmpty)
    await first.shutdown()

    // A restart uses the rotated token, not the configured (now spent) seed.
    let second = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await second.firstAttempts()
    #expect(upstream.requests.last?.json["refresh_token"] == rotated)
    #expect(await second.status("pv")?.state == .ok)
    #expect(upstream.familyRevoked == false)
    await second.shutdown()
  }

  @Test func passwordProviderUsesItsRefreshTokenAndFallsBackWhenRejected() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 100
    var settings = BrokerSettings.testDefaults
    settings.minValid = 5
    try await Single.with(.formPassword, upstreamSettings: up, settings: settings) { s async throws in
      await s.clock.advance(by: 80)
      #expect(s.upstream.requests.map { $0.form["grant_type"] } == ["password", "refresh_token"])
      s.upstream.failNext(.invalidGrant)
      await s.clock.advance(by: 80)
      #expect(
        s.upstream.requests.map { $0.form["grant_type"] } == [
          "password", "refresh_token", "refresh_token", "password",
        ])
      #expect(await s.status().state == .ok)
      #expect(s.harness.logs.lines.contains { $0.message.contains("falling back to the password grant") })
      #expect(s.leaks().isEmpty)
    }
  }

  @Test func rejectedRefreshTokenWithoutAnotherGrantNeedsLoginAndStaysSoAcrossRestarts() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    defer { Task { await upstream.stop() } }
    upstream.seedRefreshToken("rt_seed_2")
    let (p, secrets) = Self.refreshProvider(upstream, seed: "rt_seed_2")
    let dir = try TempDirectory.make("tb-login")
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await h.firstAttempts()
    upstream.failNext(.invalidGrant)
    #expect(try await h.post("/v1/providers/pv/refresh").status == 200)
    let status = try #require(await h.status("pv"))
    #expect(status.state == .degraded)  // the current token is still valid
    #expect(status.nextRefresh == nil)
    await clock.advance(by: 3600)
    #expect(await h.status("pv")?.state == .needsLogin)
    let r = try await h.get("/v1/token/pv")
    #expect(r.status == 503)
    #expect((r.json["error"] as? [String: Any])?["code"] as? String == "unavailable")
    #expect(h.logs.events("needs_login").count == 1)
    await h.shutdown()

    let count = upstream.requestCount
    let again = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await again.firstAttempts()
    #expect(await again.status("pv")?.state == .needsLogin)
    #expect(upstream.requestCount == count)
    await again.shutdown()

    // An operator configures a new first refresh token: it supersedes the state.
    upstream.seedRefreshToken("rt_seed_3")
    let (p3, s3) = Self.refreshProvider(upstream, seed: "rt_seed_3")
    let fresh = try await BrokerHarness.start(
      providers: [p3], secrets: ["pv": s3], clock: clock, stateDir: dir)
    await fresh.firstAttempts()
    #expect(await fresh.status("pv")?.state == .ok)
    #expect(upstream.requests.last?.json["refresh_token"] == "rt_seed_3")
    await fresh.shutdown()
  }

  @Test func garbledStateFileIsReportedNotSilentlyReplaced() async throws {
    let dir = try TempDirectory.make("tb-garbled")
    try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/x.state"))
    #expect(throws: StateStore.Failure.self) { try StateStore(directory: dir).load("x") }
  }

  @Test func durableWriteReplacesAtomicallyAndLeavesNoTemporaryFile() throws {
    let dir = try TempDirectory.make("tb-durable")
    let store = StateStore(directory: dir)
    for i in 0..<20 {
      try store.save(
        ProviderStateRecord(refreshToken: "rt_\(i)", seed: nil, needsLogin: false, updatedAt: 0), for: "p")
    }
    #expect(try store.load("p")?.refreshToken == "rt_19")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["p.state"])
  }
}

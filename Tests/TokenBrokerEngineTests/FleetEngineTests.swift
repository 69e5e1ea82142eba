import Foundation
import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Several brokers sharing one rotating credential through a fleet store (README "Fleet"): the
/// in-memory store has the PostgreSQL store's semantics, the upstream detects refresh-token
/// reuse, everything runs on one manual clock.
@Suite struct FleetEngineTests {
  struct Fleet {
    let clock: ManualClock
    let upstream: FakeUpstream
    let database: MemoryFleetDatabase
    let brokers: [BrokerHarness]
    let provider: ProviderConfig

    var key: FleetKey {
      FleetKey(
        provider: "pv", scopes: "",
        identity: CredentialIdentity(provider, secrets: ResolvedSecrets()).fingerprint)
    }

    func tokens() async -> [String?] {
      var out: [String?] = []
      for b in brokers {
        let answer = await b.broker.engine(named: "pv")!.token(
          scopes: ScopeSet(provider.scopes), minValid: nil)
        out.append(try? answer.get().accessToken)
      }
      return out
    }

    func stop() async {
      for b in brokers { await b.shutdown() }
      database.close()
      await upstream.stop()
    }
  }

  static func fleet(_ count: Int, grant: Grant = .refreshToken, lifetime: Int = 1000) async throws -> Fleet {
    let clock = ManualClock()
    var settings = FakeUpstream.Settings()
    settings.lifetime = lifetime
    let upstream = FakeUpstream(.powerverse, settings: settings, now: { clock.now() })
    try await upstream.start()
    upstream.seedRefreshToken("rt_seed")
    var (p, secrets) = SeedProviders.config("pv", for: upstream, grant: grant)
    if grant == .refreshToken {
      secrets.refreshToken = "rt_seed"
      p.clientAuth = .none
    }
    let database = MemoryFleetDatabase(now: { clock.now() })
    var brokers: [BrokerHarness] = []
    for i in 1...count {
      let member = FleetMember(store: database.store(node: "b\(i)"), node: "b\(i)", lease: 30)
      let b = try await BrokerHarness.start(
        providers: [p], secrets: ["pv": secrets], clock: clock, fleet: member)
      await b.firstAttempts()
      brokers.append(b)
    }
    return Fleet(clock: clock, upstream: upstream, database: database, brokers: brokers, provider: p)
  }

  @Test func threeBrokersAskTheUpstreamOncePerTokenLifetime() async throws {
    let f = try await Self.fleet(3)
    // The first broker refreshed with the seed; the others took its token.
    #expect(f.upstream.requestCount == 1)
    let first = await f.tokens()
    #expect(first.allSatisfy { $0 != nil && $0 == first[0] }, "\(first)")
    for lifetime in 1...4 {
      await f.clock.advance(by: 800)
      for b in f.brokers { await b.broker.settle() }
      #expect(f.upstream.requestCount == 1 + lifetime, "lifetime \(lifetime)")
      let now = await f.tokens()
      #expect(now.allSatisfy { $0 != nil && $0 == f.upstream.issuedAccessTokens.last }, "\(now)")
    }
    // Every refresh presented the refresh token the one before issued: no reuse.
    #expect(!f.upstream.familyRevoked)
    let presented = f.upstream.requests.compactMap { $0.json["refresh_token"] }
    #expect(Set(presented).count == presented.count)
    #expect(f.database.row(f.key)?.version == 5)
    // Each broker persisted the refresh token in force.
    for b in f.brokers {
      let record = try #require(try StateStore(directory: b.stateDir).load("pv"))
      #expect(record.refreshToken == f.upstream.issuedRefreshTokens.last)
    }
    let roles = await f.brokers.asyncMap { await $0.status("pv")?.fleet }
    #expect(roles.filter { $0?.role == "refresher" }.count == 1, "\(roles)")
    #expect(roles.allSatisfy { $0?.store == "ok" && $0?.holder != nil }, "\(roles)")
    #expect(f.brokers.allSatisfy { $0.leakedSecrets(upstreams: [f.upstream]).isEmpty })
    // The metrics count the claims the brokers won: one per refresh, over the fleet.
    var won = 0
    for b in f.brokers {
      let text = String(decoding: try await b.get("/metrics", accept: "text/plain").body, as: UTF8.self)
      #expect(text.contains("token_broker_fleet_store_up 1"), "\(text)")
      let line = text.split(separator: "\n").first { $0.hasPrefix("token_broker_fleet_claims_won ") }
      won += Int(Double(line?.split(separator: " ").last ?? "") ?? 0)
    }
    #expect(won == 5)
    await f.stop()
  }

  @Test func aBrokerThatLostTheClaimWaitsForTheCommitAndTakesIt() async throws {
    let f = try await Self.fleet(2)
    // b2 claims first and holds the claim; b1's refresh must not reach the upstream.
    let b1 = f.brokers[0].broker.engine(named: "pv")!
    let row = try #require(f.database.row(f.key))
    let store2 = f.database.store(node: "b2")
    let claim = try #require(try await store2.claim(f.key, version: row.version, node: "b2", lease: 30))
    let before = f.upstream.requestCount
    let waiting = Task { await b1.refreshNow() }
    // b2 commits a token of its own making.
    let issued = Token(
      accessToken: "at_from_b2", tokenType: "Bearer", issuedAt: f.clock.now(),
      expiresAt: f.clock.now() + 1000,
      scope: [])
    // b1 found the claim taken and waits for the commit (bounded only as a failure guard).
    let member = try #require(f.brokers[0].broker.environment.fleet)
    await yieldUntil { member.counters.claimsLost > 0 }
    #expect(member.counters.claimsLost == 1)
    #expect(
      try await store2.commit(claim, tokens: FleetTokens(token: issued, refreshToken: "rt_b2"), seed: "s"))
    _ = await waiting.value
    #expect(f.upstream.requestCount == before)
    #expect(await f.tokens()[0] == "at_from_b2")
    let record = try #require(try StateStore(directory: f.brokers[0].stateDir).load("pv"))
    #expect(record.refreshToken == "rt_b2")
    await f.stop()
  }

  @Test func aDeposedRefreshersCommitIsFencedAndItFollowsTheFleet() async throws {
    let f = try await Self.fleet(1)
    let store = f.database.store(node: "other")
    let row = try #require(f.database.row(f.key))
    let stale = try #require(try await store.claim(f.key, version: row.version, node: "other", lease: 30))
    f.database.expireClaim(f.key)
    // b1 takes the lapsed claim over and commits.
    _ = await f.brokers[0].broker.engine(named: "pv")!.refreshNow()
    #expect(f.database.row(f.key)?.version == row.version + 1)
    let held = await f.tokens()[0]
    // The deposed claim cannot write over it.
    let fake = Token(accessToken: "stale", tokenType: "Bearer", issuedAt: 0, expiresAt: 1e12, scope: [])
    #expect(
      try await store.commit(stale, tokens: FleetTokens(token: fake, refreshToken: "rt_stale"), seed: nil)
        == false)
    #expect(f.database.fencedWrites == 1)
    #expect(f.database.row(f.key)?.tokens?.token.accessToken == held)
    await f.stop()
  }

  @Test func withTheStoreDownValidTokensAreServedAndARotatingGrantWaits() async throws {
    let f = try await Self.fleet(2)
    let held = await f.tokens()
    f.database.setReachable(false)
    let requests = f.upstream.requestCount
    // Due for refresh: nobody may use the shared refresh token alone.
    await f.clock.advance(by: 800)
    #expect(f.upstream.requestCount == requests)
    #expect(await f.tokens() == held)
    let status = try #require(await f.brokers[0].status("pv"))
    #expect(status.fleet?.store == "unreachable")
    #expect(status.lastError?.contains("the fleet's store is unreachable") == true)
    // Back: the next attempt refreshes once for the fleet.
    f.database.setReachable(true)
    await f.clock.advance(by: 100)
    for b in f.brokers { await b.broker.settle() }
    #expect(f.upstream.requestCount == requests + 1)
    #expect(!f.upstream.familyRevoked)
    #expect(await f.brokers[0].status("pv")?.fleet?.store == "ok")
    await f.stop()
  }

  /// The store goes down between a broker's claim and its commit: the answer is kept (its
  /// refresh token persisted locally, its token served) and pushed to the store when it is
  /// back; the other broker then follows it, and nobody asks the upstream again.
  @Test func aCommitTheStoreMissedIsPushedWhenItIsBack() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    upstream.seedRefreshToken("rt_seed")
    var (p, secrets) = SeedProviders.config("pv", for: upstream, grant: .refreshToken)
    secrets.refreshToken = "rt_seed"
    p.clientAuth = .none
    let database = MemoryFleetDatabase(now: { clock.now() })
    var gate: GatedTransport?
    var brokers: [BrokerHarness] = []
    for node in ["b1", "b2"] {
      let member = FleetMember(store: database.store(node: node), node: node, lease: 30)
      let b = try await BrokerHarness.start(
        providers: [p], secrets: ["pv": secrets], clock: clock, fleet: member,
        wrapTransport: { inner in
          let g = GatedTransport(inner)
          if node == "b1" { gate = g }
          return g
        })
      await b.firstAttempts()
      brokers.append(b)
    }
    let key = FleetKey(
      provider: "pv", scopes: "", identity: CredentialIdentity(p, secrets: ResolvedSecrets()).fingerprint)
    let version = try #require(database.row(key)?.version)
    let b1Gate = try #require(gate)
    b1Gate.close()
    let arrivals = b1Gate.arrivals
    let b1 = try #require(brokers[0].broker.engine(named: "pv"))
    let refresh = Task { await b1.refreshNow() }
    await b1Gate.awaitArrivals(arrivals + 1)
    database.setReachable(false)
    b1Gate.open()
    _ = await refresh.value
    // b1 kept the answer: served, and its refresh token on disk.
    let issued = try #require(upstream.issuedAccessTokens.last)
    #expect(try await brokers[0].get("/v1/token/pv").json["access_token"] as? String == issued)
    #expect(
      try StateStore(directory: brokers[0].stateDir).load("pv")?.refreshToken
        == upstream.issuedRefreshTokens.last)
    #expect(database.row(key)?.version == version)
    let requests = upstream.requestCount
    database.setReachable(true)
    await yieldUntil { database.row(key)?.version != version }
    #expect(database.row(key)?.version == version + 1)
    #expect(database.row(key)?.tokens?.token.accessToken == issued)
    let follower = brokers[1]
    try await yieldUntil(attempts: 5_000) {
      try await follower.get("/v1/token/pv").json["access_token"] as? String == issued
    }
    #expect(try await brokers[1].get("/v1/token/pv").json["access_token"] as? String == issued)
    #expect(upstream.requestCount == requests)
    #expect(!upstream.familyRevoked)
    for b in brokers { await b.shutdown() }
    database.close()
    await upstream.stop()
  }

  @Test func aClientCredentialsProviderRefreshesLocallyWhileTheStoreIsDown() async throws {
    let f = try await Self.fleet(1, grant: .clientCredentials)
    f.database.setReachable(false)
    let requests = f.upstream.requestCount
    await f.clock.advance(by: 800)
    #expect(f.upstream.requestCount == requests + 1)
    #expect(await f.tokens()[0] == f.upstream.issuedAccessTokens.last)
    await f.stop()
  }

  @Test func aLostAnnouncementIsCaughtUpByReadingTheRow() async throws {
    let f = try await Self.fleet(2)
    f.database.setAnnouncing(false)
    await f.clock.advance(by: 800)
    for b in f.brokers { await b.broker.settle() }
    // One refresh; the other broker read the row (by the poll, or when its own timer fired).
    #expect(f.upstream.requestCount == 2)
    let now = await f.tokens()
    #expect(now[0] == now[1] && now[0] == f.upstream.issuedAccessTokens.last)
    await f.stop()
  }

  /// A broker that did not hear of another's logout finds the emptied row when it next
  /// refreshes: it forgets its tokens and refresh token instead of refreshing the fleet again.
  @Test func aRefreshThatFindsTheFleetLoggedOutForgetsInsteadOfRefreshing() async throws {
    let f = try await Self.fleet(2)
    f.database.setAnnouncing(false)
    let requests = f.upstream.requestCount
    guard case .success = await f.brokers[0].broker.engine(named: "pv")!.logout() else {
      Issue.record("the logout failed")
      return
    }
    let follower = f.brokers[1]
    #expect(await follower.status("pv")?.state == .ok)  // no announcement came
    let status = await follower.broker.engine(named: "pv")!.refreshNow()
    #expect(status.state == .needsLogin)
    #expect(status.lastError?.contains("logged out on b1 of the fleet") == true)
    #expect(f.upstream.requestCount == requests)
    #expect(await f.tokens() == [nil, nil])
    // Written off the event loop (bounded only as a failure guard).
    let store = StateStore(directory: follower.stateDir)
    _ = await yieldUntil { (try? store.load("pv"))?.needsLogin == true }
    let record = try store.load("pv")
    #expect(record?.refreshToken == nil && record?.needsLogin == true)
    #expect(follower.logs.events("fleet_logged_out").count == 1)
    await f.stop()
  }

  /// A commit whose announcement never arrives reaches the other broker by the poll, within
  /// one poll interval, long before that broker's own refresh would read the row.
  @Test func aLostAnnouncementIsCaughtUpByThePollWithinItsInterval() async throws {
    let f = try await Self.fleet(2)
    let follower = try #require(f.brokers[1].broker.environment.fleet)
    let before = await f.tokens()
    f.database.setAnnouncing(false)
    _ = await f.brokers[0].broker.engine(named: "pv")!.refreshNow()
    let refreshed = await f.tokens()
    #expect(refreshed[0] != before[0])
    #expect(refreshed[1] == before[1])  // no announcement came
    let polls = follower.counters.polls
    await f.clock.advance(by: follower.pollInterval)
    #expect(await yieldUntil { await f.tokens()[1] == refreshed[0] })
    #expect(follower.counters.polls > polls)
    #expect(f.upstream.requestCount == 2)  // the first fetch and the one refresh: the poll only reads
    await f.stop()
  }
}

extension Array {
  func asyncMap<T>(_ body: (Element) async -> T) async -> [T] {
    var out: [T] = []
    for e in self { out.append(await body(e)) }
    return out
  }
}

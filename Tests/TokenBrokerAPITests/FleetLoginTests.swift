import Foundation
import Testing
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// `tokenctl login` on any broker of a fleet seeds the whole fleet, and `tokenctl logout` on
/// any broker logs the whole fleet out (README "Fleet").
@Suite struct FleetLoginTests {
  /// Two brokers b1 and b2 of one fleet, with one provider `p` that needs a login.
  struct Fleet {
    var clock: ManualClock
    var upstream: FakeUpstream
    var database: MemoryFleetDatabase
    var brokers: [BrokerHarness]

    static func start(tweak: (inout ProviderConfig) -> Void = { _ in }) async throws -> Fleet {
      let clock = ManualClock()
      var settings = FakeUpstream.Settings()
      settings.login.publicClient = false
      let upstream = FakeUpstream(.powerverse, settings: settings, now: { clock.now() })
      try await upstream.start()
      var (p, secrets) = SeedProviders.config(
        "p", for: upstream, grant: .authorizationCode, scopes: ["read:sites"])
      LoginFlowTests.loginProvider(&p, &secrets, upstream)
      tweak(&p)
      let database = MemoryFleetDatabase(now: { clock.now() })
      var brokers: [BrokerHarness] = []
      for node in ["b1", "b2"] {
        let member = FleetMember(store: database.store(node: node), node: node, lease: 30)
        let b = try await BrokerHarness.start(
          providers: [p], secrets: ["p": secrets], clock: clock, fleet: member)
        await b.firstAttempts()
        brokers.append(b)
      }
      return Fleet(clock: clock, upstream: upstream, database: database, brokers: brokers)
    }

    /// A browser login on broker `index`.
    func logIn(on index: Int) async throws {
      let start = try await brokers[index].post(
        "/v1/providers/p/login",
        json: #"{"method":"browser","redirect_uri":"http://127.0.0.1:4567/callback"}"#)
      let url = try #require(start.json["authorization_url"] as? String)
      let location = try await FakeUpstream.followAuthorization(url)
      let done = try await brokers[index].post(
        "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      #expect(done.status == 200, "\(done.text)")
    }

    /// Waits (bounded only as a failure guard) until broker `index` is in `state`.
    func waitFor(_ index: Int, _ state: ProviderState) async {
      let broker = brokers[index]
      _ = await yieldUntil { await broker.status("p")?.state == state }
    }

    /// Broker `index`'s state file of `p` once `written` holds of it (bounded only as a failure
    /// guard: the credential is written off the event loop).
    func stateRecord(_ index: Int, until written: (ProviderStateRecord?) -> Bool) async
      -> ProviderStateRecord?
    {
      let store = StateStore(directory: brokers[index].stateDir)
      _ = await yieldUntil { written(try? store.load("p")) }
      return try? store.load("p")
    }

    /// Requests that reached the token endpoint (code exchanges and refreshes).
    var exchanges: Int {
      upstream.requests.filter { $0.form["grant_type"] != nil || $0.json["grant_type"] != nil }.count
    }

    func stop() async {
      for b in brokers { await b.shutdown() }
      database.close()
      await upstream.stop()
    }
  }

  @Test func aLoginOnOneBrokerSeedsEveryBroker() async throws {
    let fleet = try await Fleet.start()
    let brokers = fleet.brokers
    #expect(await brokers[1].status("p")?.state == .needsLogin)
    try await fleet.logIn(on: 0)
    // The other broker takes the login's token and refresh token from the announcement.
    await fleet.waitFor(1, .ok)
    #expect(await brokers[1].status("p")?.state == .ok)
    let served = try await brokers[1].get("/v1/token/p")
    #expect(served.json["access_token"] as? String == fleet.upstream.issuedAccessTokens.last)
    #expect(fleet.exchanges == 1, "only the code exchange reached the token endpoint")
    // The adopted refresh token is written off the event loop, after the token is served.
    let issued = fleet.upstream.issuedRefreshTokens.last
    let record = await fleet.stateRecord(1) { $0?.refreshToken == issued }
    #expect(record?.refreshToken == issued && record?.needsLogin == false)
    #expect(await brokers[1].status("p")?.fleet?.holder == "b1")
    await fleet.stop()
  }

  /// Without a revocation_url the refresh token still works at the provider after a logout:
  /// the other brokers must forget it too, or the next one to refresh would fill the fleet
  /// again with it and undo the logout.
  @Test func aLogoutOnOneBrokerLogsEveryBrokerOut() async throws {
    let fleet = try await Fleet.start(tweak: { $0.login.revocationURL = nil })
    let brokers = fleet.brokers
    try await fleet.logIn(on: 0)
    await fleet.waitFor(1, .ok)
    #expect(try await brokers[1].get("/v1/token/p").status == 200)

    let logout = try await brokers[0].post("/v1/providers/p/logout")
    #expect(logout.status == 200, "\(logout.text)")
    await fleet.waitFor(1, .needsLogin)
    #expect(await brokers[1].status("p")?.state == .needsLogin)
    #expect(try await brokers[1].get("/v1/token/p").status == 503)
    let record = await fleet.stateRecord(1) { $0?.needsLogin == true }
    #expect(record?.refreshToken == nil && record?.needsLogin == true)
    #expect(brokers[1].logs.events("fleet_logged_out").count == 1)
    #expect(fleet.upstream.revocationRequests.isEmpty)

    // Hours later no broker has refreshed the fleet with the refresh token it held.
    for _ in 0..<3 { await fleet.clock.advance(by: 3600) }
    for b in brokers { await b.broker.settle() }
    #expect(fleet.exchanges == 1, "only the login's code exchange reached the token endpoint")
    for b in brokers { #expect(await b.status("p")?.state == .needsLogin) }

    // A login on the other broker serves the whole fleet again.
    try await fleet.logIn(on: 1)
    await fleet.waitFor(0, .ok)
    #expect(await brokers[0].status("p")?.state == .ok)
    #expect(try await brokers[0].get("/v1/token/p").status == 200)
    await fleet.stop()
  }
}

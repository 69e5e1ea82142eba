import Foundation
import Testing
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// `tokenctl login` on any broker of a fleet seeds the whole fleet (README "Fleet").
@Suite struct FleetLoginTests {
  @Test func aLoginOnOneBrokerSeedsEveryBroker() async throws {
    let clock = ManualClock()
    var settings = FakeUpstream.Settings()
    settings.login.publicClient = false
    let upstream = FakeUpstream(.powerverse, settings: settings, now: { clock.now() })
    try await upstream.start()
    var (p, secrets) = SeedProviders.config(
      "p", for: upstream, grant: .authorizationCode, scopes: ["read:sites"])
    LoginFlowTests.loginProvider(&p, &secrets, upstream)
    let database = MemoryFleetDatabase(now: { clock.now() })
    var brokers: [BrokerHarness] = []
    for node in ["b1", "b2"] {
      let member = FleetMember(store: database.store(node: node), node: node, lease: 30)
      let b = try await BrokerHarness.start(
        providers: [p], secrets: ["p": secrets], clock: clock, fleet: member)
      await b.firstAttempts()
      brokers.append(b)
    }
    #expect(await brokers[1].status("p")?.state == .needsLogin)

    let start = try await brokers[0].post(
      "/v1/providers/p/login", json: #"{"method":"browser","redirect_uri":"http://127.0.0.1:4567/callback"}"#)
    let url = try #require(start.json["authorization_url"] as? String)
    let location = try await FakeUpstream.followAuthorization(url)
    let done = try await brokers[0].post(
      "/v1/providers/p/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
    #expect(done.status == 200, "\(done.text)")

    // The other broker takes the login's token and refresh token from the announcement
    // (bounded only as a failure guard).
    let follower = brokers[1]
    await yieldUntil { await follower.status("p")?.state == .ok }
    #expect(await brokers[1].status("p")?.state == .ok)
    let served = try await brokers[1].get("/v1/token/p")
    #expect(served.json["access_token"] as? String == upstream.issuedAccessTokens.last)
    let exchanges = upstream.requests.filter { $0.form["grant_type"] != nil || $0.json["grant_type"] != nil }
    #expect(
      exchanges.count == 1, "only the code exchange reached the token endpoint: \(exchanges.map(\.path))")
    let record = try StateStore(directory: brokers[1].stateDir).load("p")
    #expect(record?.refreshToken == upstream.issuedRefreshTokens.last && record?.needsLogin == false)
    #expect(await brokers[1].status("p")?.fleet?.holder == "b1")
    for b in brokers { await b.shutdown() }
    database.close()
    await upstream.stop()
  }
}

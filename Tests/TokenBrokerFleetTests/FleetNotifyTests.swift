import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

/// `NOTIFY token_broker, 'FLEET|VERSION|ID'` reaches every broker of the fleet, and only it.
@Suite(.enabled(if: PostgresFixture.isAvailable)) struct FleetNotifyTests {
  @Test func aCommitReachesAnotherStoresChanges() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let a = try await Fleet.start(pg, node: "node-a", key: key)
    let b = try await Fleet.start(pg, node: "node-b", key: key)
    // ready() returned after the first LISTEN: .resubscribed was the first change.
    #expect(b.changes.all.first == .resubscribed || b.changes.all.isEmpty)
    try await b.changes.wait(for: .resubscribed)
    let v1 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "s", node: "a")
    try await b.changes.wait(for: .row(id: Fleet.key.id, version: v1))
    let claim = try #require(try await b.store.claim(Fleet.key, version: v1, node: "node-b", lease: 60))
    #expect(try await b.store.commit(claim, tokens: Fleet.tokens("v2"), seed: nil))
    // The committer's own store hears it too.
    try await a.changes.wait(for: .row(id: Fleet.key.id, version: v1 + 1))
    try await b.changes.wait(for: .row(id: Fleet.key.id, version: v1 + 1))
    // A fenced commit and a release announce nothing; a logout announces the row's new, empty
    // version.
    try await a.store.forget(provider: Fleet.key.provider, node: "a")
    try await b.changes.wait(for: .row(id: Fleet.key.id, version: v1 + 2))
    #expect(b.changes.all.filter { if case .row = $0 { true } else { false } }.count == 3)
    await a.stop()
    await b.stop()
  }

  @Test func twoFleetsOnOneDatabaseSeeNeitherTheOthersRowsNorNotifications() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let blue = try await Fleet.start(pg, fleet: "blue", node: "node-1", key: Fleet.randomKey())
    let green = try await Fleet.start(pg, fleet: "green", node: "node-1", key: Fleet.randomKey())
    let vBlue = try await blue.store.seed(Fleet.key, tokens: Fleet.tokens("blue"), seed: "s", node: "a")
    #expect(try await green.store.read(Fleet.key) == nil)
    // The same key in both fleets: two rows, each with its own tokens and versions.
    let vGreen = try await green.store.seed(Fleet.key, tokens: Fleet.tokens("green"), seed: "s", node: "a")
    _ = try await green.store.seed(Fleet.key, tokens: Fleet.tokens("green2"), seed: "s", node: "a")
    #expect(try await blue.store.read(Fleet.key)?.tokens == Fleet.tokens("blue"))
    #expect(try await green.store.read(Fleet.key)?.tokens == Fleet.tokens("green2"))
    #expect(try await blue.store.claim(Fleet.key, version: vBlue, node: "node-1", lease: 60) != nil)
    #expect(try await green.store.read(Fleet.key)?.holder == nil)
    // Notifications arrive in commit order on one channel: once each store has seen its own
    // fleet's last change, it would have seen the other fleet's earlier ones.
    try await blue.changes.wait(for: .row(id: Fleet.key.id, version: vBlue))
    try await green.changes.wait(for: .row(id: Fleet.key.id, version: vGreen + 1))
    try await blue.store.forget(provider: Fleet.key.provider, node: "a")
    try await blue.changes.wait(for: .row(id: Fleet.key.id, version: vBlue + 1))
    #expect(try await green.store.read(Fleet.key)?.tokens == Fleet.tokens("green2"))
    _ = try await green.store.seed(Fleet.otherKey, tokens: Fleet.tokens("g"), seed: "s", node: "a")
    try await green.changes.wait(for: .row(id: Fleet.otherKey.id, version: 1))
    #expect(
      blue.changes.all.filter { if case .row = $0 { true } else { false } } == [
        .row(id: Fleet.key.id, version: vBlue), .row(id: Fleet.key.id, version: vBlue + 1),
      ])
    #expect(
      green.changes.all.filter { if case .row = $0 { true } else { false } } == [
        .row(id: Fleet.key.id, version: vGreen), .row(id: Fleet.key.id, version: vGreen + 1),
        .row(id: Fleet.otherKey.id, version: 1),
      ])
    #expect(try await pg.count("token_broker_keycheck") == 2)
    await blue.stop()
    await green.stop()
  }
}

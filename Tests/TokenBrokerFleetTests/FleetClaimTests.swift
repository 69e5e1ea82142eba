import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

/// Claims are leases on the database's clock, commits compare-and-set on (version, epoch): one
/// refresher per row at a time, and a deposed one writes nothing.
@Suite(.enabled(if: PostgresFixture.isAvailable)) struct FleetClaimTests {
  @Test func aCommittedRowReadsBackAsWritten() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let a = try await Fleet.start(pg, key: Fleet.randomKey())
    #expect(try await a.store.read(Fleet.key) == nil)
    let version = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("one"), seed: "seed-fp-1", node: "a")
    #expect(version == 1)
    let row = try #require(try await a.store.read(Fleet.key))
    #expect(row.tokens == Fleet.tokens("one"))
    #expect(row.version == 1 && row.seed == "seed-fp-1" && row.holder == nil && row.claimRemaining == nil)
    // Without a refresh token, rt_ct stays empty and the row reads back without one.
    #expect(
      try await a.store.seed(
        Fleet.otherKey, tokens: Fleet.tokens("two", refresh: false), seed: "s", node: "a") == 1)
    #expect(try await a.store.read(Fleet.otherKey)?.tokens == Fleet.tokens("two", refresh: false))
    #expect(try await pg.psql("SELECT count(*) FROM token_broker_credentials WHERE rt_ct IS NULL") == "1")
    // What the database holds is ciphertext: no token in any column.
    let dump = try await pg.psql("SELECT t::text FROM token_broker_credentials t")
    #expect(!dump.contains("secret") && !dump.contains(Fleet.hex(Array("at-secret".utf8))))
    await a.stop()
  }

  @Test func manyConcurrentClaimsOfOneRowGrantExactlyOne() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    var stores: [RunningStore] = []
    for i in 0..<4 { stores.append(try await Fleet.start(pg, node: "node-\(i)", key: key)) }
    // A missing row (version nil: the claim creates it), then an existing one at version 1.
    for version in [nil, Int64(1)] as [Int64?] {
      let all = stores
      let won = try await withThrowingTaskGroup(of: FleetClaim?.self) { group in
        for (i, s) in all.enumerated() {
          for j in 0..<8 {
            group.addTask {
              try await s.store.claim(Fleet.key, version: version, node: "n\(i)-\(j)", lease: 60)
            }
          }
        }
        var won: [FleetClaim] = []
        for try await c in group { if let c { won.append(c) } }
        return won
      }
      #expect(won.count == 1, "version \(String(describing: version)): \(won.count) claims granted")
      let claim = try #require(won.first)
      #expect(claim.row.holder?.hasPrefix("n") == true && claim.lease == 60)
      #expect(try await pg.psql("SELECT claim_holder FROM token_broker_credentials") == claim.row.holder)
      #expect(try await stores[0].store.commit(claim, tokens: Fleet.tokens("v"), seed: "s"))
    }
    for s in stores { await s.stop() }
  }

  @Test func aLapsedClaimIsTakenOverAndTheDeposedHoldersCommitWritesNothing() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let a = try await Fleet.start(pg, node: "node-a", key: key)
    let b = try await Fleet.start(pg, node: "node-b", key: key)
    let v1 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "seed", node: "a")
    let claimA = try #require(try await a.store.claim(Fleet.key, version: v1, node: "node-a", lease: 600))
    #expect(claimA.row.holder == "node-a" && claimA.row.tokens == Fleet.tokens("v1"))
    #expect((claimA.row.claimRemaining ?? 0) > 0)
    // Live: another node cannot take it, and sees who holds it.
    #expect(try await b.store.claim(Fleet.key, version: v1, node: "node-b", lease: 600) == nil)
    #expect(try await b.store.read(Fleet.key)?.holder == "node-a")
    // The lease runs out (on the database's clock): node-b takes it over.
    try await pg.expireClaims()
    #expect(try await b.store.read(Fleet.key)?.holder == nil)
    let claimB = try #require(try await b.store.claim(Fleet.key, version: v1, node: "node-b", lease: 600))
    #expect(claimB.row.epoch == claimA.row.epoch + 1)
    // The row says who refreshed it last: node-a's login.
    #expect(claimB.row.refresher == "a")
    // The deposed holder's commit is fenced: false, nothing written, logged as an error.
    let before = try await pg.snapshot()
    #expect(try await a.store.commit(claimA, tokens: Fleet.tokens("from-a"), seed: nil) == false)
    #expect(try await pg.snapshot() == before)
    let fenced = a.logs.events("fleet_fenced")
    #expect(fenced.count == 1 && fenced.first?.level == .error)
    // The new holder's commit goes through: version + 1, claim released.
    #expect(try await b.store.commit(claimB, tokens: Fleet.tokens("from-b"), seed: nil))
    let row = try #require(try await a.store.read(Fleet.key))
    #expect(row.version == v1 + 1 && row.tokens == Fleet.tokens("from-b") && row.seed == "seed")
    #expect(row.holder == nil && row.claimRemaining == nil && row.refresher == "node-b")
    #expect(
      try await pg.psql("SELECT claim_holder IS NULL AND claim_until IS NULL FROM token_broker_credentials")
        == "t")
    // A claim of the old version is refused: the row moved on.
    #expect(try await a.store.claim(Fleet.key, version: v1, node: "node-a", lease: 60) == nil)
    #expect(try await a.store.commit(claimB, tokens: Fleet.tokens("again"), seed: nil) == false)
    await a.stop()
    await b.stop()
  }

  @Test func aReleasedClaimCanBeTakenAndALoginFencesTheHolder() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let a = try await Fleet.start(pg, node: "node-a", key: key)
    let v1 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "seed", node: "a")
    let claim = try #require(try await a.store.claim(Fleet.key, version: v1, node: "node-a", lease: 600))
    try await a.store.release(claim)
    #expect(try await a.store.read(Fleet.key)?.holder == nil)
    let again = try #require(try await a.store.claim(Fleet.key, version: v1, node: "node-b", lease: 600))
    // A login writes a new version whatever the row held, and the claim it overtook is fenced.
    let v2 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("login"), seed: "seed-2", node: "a")
    #expect(v2 == v1 + 1)
    #expect(try await a.store.commit(again, tokens: Fleet.tokens("late"), seed: nil) == false)
    let row = try #require(try await a.store.read(Fleet.key))
    #expect(
      row.version == v2 && row.seed == "seed-2" && row.tokens == Fleet.tokens("login") && row.holder == nil)
    // A logout empties every row of the provider, only those: a new version without tokens,
    // written by the node that logged out, that nobody may claim from a stale version.
    _ = try await a.store.seed(Fleet.otherKey, tokens: Fleet.tokens("other"), seed: "s", node: "a")
    let scoped = FleetKey(provider: Fleet.key.provider, scopes: "", identity: Fleet.key.identity)
    _ = try await a.store.seed(scoped, tokens: Fleet.tokens("scoped"), seed: "s", node: "a")
    try await a.store.forget(provider: Fleet.key.provider, node: "b")
    let emptied = try #require(try await a.store.read(Fleet.key))
    #expect(emptied.loggedOut && emptied.tokens == nil && emptied.version == v2 + 1)
    #expect(emptied.refresher == "b" && emptied.holder == nil)
    #expect(try await a.store.read(scoped)?.loggedOut == true)
    #expect(try await a.store.read(Fleet.otherKey)?.tokens == Fleet.tokens("other"))
    #expect(try await a.store.read(Fleet.otherKey)?.loggedOut == false)
    #expect(try await pg.psql("SELECT count(*) FROM token_broker_credentials WHERE rt_ct IS NULL") == "2")
    // A login fills the row again.
    let v3 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("again"), seed: "seed-3", node: "a")
    let filled = try #require(try await a.store.read(Fleet.key))
    #expect(v3 == v2 + 2 && !filled.loggedOut && filled.tokens == Fleet.tokens("again"))
    await a.stop()
  }
}

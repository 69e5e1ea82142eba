import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

/// What goes wrong says so without a secret: a wrong key writes nothing, a changed ciphertext is
/// not used, an outage is `.unreachable` and heals, a missing grant names the GRANT.
@Suite(.enabled(if: PostgresFixture.isAvailable)) struct FleetFailureTests {
  @Test func aWrongKeyIsRefusedAtStartAndWritesNothing() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let first = try await Fleet.start(pg, node: "node-a", key: key)
    _ = try await first.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "s", node: "a")
    let before = try await pg.snapshot()
    let wrongKey = Fleet.randomKey()
    let wrong = try Fleet.launch(pg, node: "node-b", key: wrongKey)
    let error = try await wrong.outcome() as? FleetStoreError
    #expect(error?.code == .keyMismatch)
    #expect(error?.message.contains("differs from the one that created fleet default") == true)
    #expect(error?.message.contains("same [fleet] key on every broker") == true)
    let refusal = try #require(error)
    await #expect(throws: refusal) { try await wrong.ready() }
    #expect(wrong.store.health.state == .failed)
    // Nothing goes through it afterwards either.
    let seed = await #expect(throws: FleetStoreError.self) {
      try await wrong.store.seed(Fleet.key, tokens: Fleet.tokens("evil"), seed: "x", node: "a")
    }
    #expect(seed?.code == .keyMismatch)
    await #expect(throws: FleetStoreError.self) {
      try await wrong.store.claim(Fleet.otherKey, version: nil, node: "node-b", lease: 60)
    }
    #expect(try await pg.snapshot() == before)
    #expect(wrong.logs.events("fleet_key_mismatch").count == 1)
    let all = Fleet.secrets(pg, key: wrongKey, tags: ["v1", "evil"]) + [Fleet.hex(key)]
    #expect(wrong.logs.leaks(of: all).isEmpty)
    #expect(!all.contains { error?.message.contains($0) == true })
    await first.stop()
  }

  @Test func aChangedOrMovedCiphertextIsNotUsed() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let a = try await Fleet.start(pg, key: Fleet.randomKey())
    _ = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("one"), seed: "s", node: "a")
    _ = try await a.store.seed(Fleet.otherKey, tokens: Fleet.tokens("two"), seed: "s", node: "a")
    // One bit of the access token's ciphertext flipped.
    try await pg.psql(
      "UPDATE token_broker_credentials SET at_ct = set_byte(at_ct, 20, get_byte(at_ct, 20) # 1) WHERE provider = 'github'"
    )
    let error = await #expect(throws: FleetStoreError.self) { try await a.store.read(Fleet.key) }
    #expect(error?.code == .tampered)
    #expect(
      error?.message.contains("the access token of github [repo] (version 1) does not authenticate") == true)
    #expect(a.logs.events("fleet_tampered").count == 1)
    // Another row's valid ciphertext copied in, or the row's version changed under it.
    try await pg.psql(
      """
      UPDATE token_broker_credentials SET at_ct = (SELECT at_ct FROM token_broker_credentials WHERE provider = 'gitlab'),
        rt_ct = (SELECT rt_ct FROM token_broker_credentials WHERE provider = 'gitlab') WHERE provider = 'github'
      """)
    await #expect(throws: FleetStoreError.self) { try await a.store.read(Fleet.key) }
    try await pg.psql("UPDATE token_broker_credentials SET version = 2 WHERE provider = 'gitlab'")
    let moved = await #expect(throws: FleetStoreError.self) { try await a.store.read(Fleet.otherKey) }
    #expect(moved?.code == .tampered)
    // A claim of a tampered row does not hand the tokens out either.
    await #expect(throws: FleetStoreError.self) {
      try await a.store.claim(Fleet.otherKey, version: 2, node: "node-a", lease: 60)
    }
    #expect(a.logs.leaks(of: Fleet.secrets(pg, key: [], tags: ["one", "two"])).isEmpty)
    await a.stop()
  }

  /// Only a holder of the key logs a fleet out: a `seed` column that says `logged_out` without
  /// the sealed mark is not a logout, and a mark moved to another row does not authenticate.
  @Test func aLogoutWrittenWithoutTheKeyIsNotOne() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let a = try await Fleet.start(pg, key: Fleet.randomKey())
    _ = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("one"), seed: "s", node: "a")
    _ = try await a.store.seed(Fleet.otherKey, tokens: Fleet.tokens("two"), seed: "s", node: "a")
    try await pg.psql("UPDATE token_broker_credentials SET seed = 'logged_out' WHERE provider = 'github'")
    let row = try #require(try await a.store.read(Fleet.key))
    #expect(!row.loggedOut && row.tokens == Fleet.tokens("one"))
    try await a.store.forget(provider: Fleet.otherKey.provider, node: "a")
    #expect(try await a.store.read(Fleet.otherKey)?.loggedOut == true)
    try await pg.psql(
      """
      UPDATE token_broker_credentials SET at_ct = (SELECT at_ct FROM token_broker_credentials WHERE provider = 'gitlab'),
        rt_ct = NULL, version = (SELECT version FROM token_broker_credentials WHERE provider = 'gitlab')
      WHERE provider = 'github'
      """)
    let moved = await #expect(throws: FleetStoreError.self) { try await a.store.read(Fleet.key) }
    #expect(moved?.code == .tampered)
    await a.stop()
  }

  @Test func anOutageIsUnreachableAndTheStoreReconnectsAndResubscribes() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let a = try await Fleet.start(pg, node: "node-a", key: key, options: Fleet.quick)
    _ = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "s", node: "a")
    #expect(a.store.health.state == .ok)
    #expect(a.changes.count(of: .resubscribed) == 1)
    try await pg.stop()
    for call in 0..<3 {
      let error = await #expect(throws: FleetStoreError.self) {
        switch call {
        case 0: _ = try await a.store.read(Fleet.key)
        case 1: _ = try await a.store.claim(Fleet.key, version: 1, node: "node-a", lease: 60)
        default: _ = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("lost"), seed: "s", node: "a")
        }
      }
      #expect(error?.code == .unreachable)
      #expect(error?.message.contains("fleet default: cannot") == true)
      #expect(error?.message.contains("broker@127.0.0.1:\(pg.port)/fleet") == true)
    }
    #expect(a.store.health.state == .unreachable)
    #expect(a.store.health.lastError?.isEmpty == false)
    try await pg.start()
    // The LISTEN connection comes back by itself: a second .resubscribed.
    try await a.changes.wait(for: .resubscribed, times: 2)
    // Statements work again once the pool has reconnected (each try bounded by the timeout).
    try await until("a read after the restart") { (try? await a.store.read(Fleet.key)) != nil }
    #expect(a.store.health.state == .ok)
    // A notification after the restart arrives, from another broker too.
    let b = try await Fleet.start(pg, node: "node-b", key: key)
    let v2 = try await b.store.seed(Fleet.key, tokens: Fleet.tokens("v2"), seed: "s2", node: "a")
    try await a.changes.wait(for: .row(id: Fleet.key.id, version: v2))
    #expect(try await a.store.read(Fleet.key)?.tokens == Fleet.tokens("v2"))
    let secrets = Fleet.secrets(pg, key: key, tags: ["v1", "lost", "v2"])
    #expect(a.logs.leaks(of: secrets).isEmpty)
    #expect(a.logs.events("fleet_unreachable").isEmpty == false)
    // The outage is one warning from the LISTEN side, however many reconnection attempts it took.
    #expect(a.logs.lines.filter { $0.level == .warning && $0.message.contains("lost the LISTEN") }.count == 1)
    #expect(
      a.logs.lines.contains { $0.message.contains("reconnected; listening for the fleet's changes again") })
    #expect(!secrets.contains { a.store.health.lastError?.contains($0) == true })
    await a.stop()
    await b.stop()
  }

  @Test func aRoleWithoutGrantsIsRefusedWithTheGrantItNeeds() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let owner = try await Fleet.start(pg, key: Fleet.randomKey())
    await owner.stop()
    try await pg.psql("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-7x'")
    let dsn = "postgresql://reader:reader-pw-7x@127.0.0.1:\(pg.port)/fleet?sslmode=disable"
    let reader = try Fleet.launch(pg, node: "node-r", key: Fleet.randomKey(), dsn: dsn)
    let error = try await reader.outcome() as? FleetStoreError
    #expect(error?.code == .refused)
    #expect(error?.message.contains("permission denied") == true)
    #expect(
      error?.message.contains(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON token_broker_schema, token_broker_keycheck, "
          + "token_broker_credentials TO \"reader\"") == true)
    #expect(error?.message.contains("reader-pw-7x") == false)
    #expect(reader.store.health.state == .failed)
    #expect(reader.logs.leaks(of: ["reader-pw-7x"]).isEmpty)
  }

  @Test func aWrongPasswordIsRefusedWithoutShowingIt() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let dsn = "postgresql://broker:not-the-pw-93@127.0.0.1:\(pg.port)/fleet?sslmode=disable"
    let s = try Fleet.launch(pg, key: Fleet.randomKey(), dsn: dsn)
    let error = try await s.outcome() as? FleetStoreError
    #expect(error?.code == .refused)
    #expect(error?.message.contains("password authentication failed") == true)
    #expect(error?.message.contains("not-the-pw-93") == false)
    #expect(s.logs.leaks(of: ["not-the-pw-93"]).isEmpty)
    #expect(try await pg.count("pg_tables WHERE tablename LIKE 'token_broker%'") == 0)
  }
}

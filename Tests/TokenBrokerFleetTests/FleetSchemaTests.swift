import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

/// The brokers create the tables themselves, together if they start together.
@Suite(.enabled(if: PostgresFixture.isAvailable)) struct FleetSchemaTests {
  @Test func storesStartingAtOnceCreateTheSchemaOnce() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let key = Fleet.randomKey()
    let stores = try (0..<4).map { try Fleet.launch(pg, node: "node-\($0)", key: key) }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for s in stores { group.addTask { try await s.store.ready() } }
      try await group.waitForAll()
    }
    #expect(try await pg.psql("SELECT version FROM token_broker_schema") == "1")
    #expect(try await pg.count("token_broker_keycheck") == 1)
    #expect(
      try await pg.psql(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'token_broker%'"
      )
        == "token_broker_credentials,token_broker_keycheck,token_broker_schema")
    #expect(stores.allSatisfy { $0.store.health.state == .ok })
    for s in stores { await s.stop() }
    // A restart finds the schema current and the key check its own.
    let again = try await Fleet.start(pg, node: "node-0", key: key)
    #expect(again.logs.events("fleet_started").first?.metadata["schema"] == "current")
    await again.stop()
  }

  @Test func aNewerSchemaIsRefused() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let first = try await Fleet.start(pg, key: Fleet.randomKey())
    await first.stop()
    try await pg.psql("UPDATE token_broker_schema SET version = 99")
    let s = try Fleet.launch(pg, key: Fleet.randomKey())
    let error = try await s.outcome() as? FleetStoreError
    #expect(error?.code == .refused)
    #expect(error?.message.contains("schema version 99") == true)
  }

  @Test func aUnixSocketDSNWorks() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    let s = try await Fleet.start(pg, key: Fleet.randomKey(), dsn: pg.socketDSN)
    #expect(try await s.store.seed(Fleet.key, tokens: Fleet.tokens("sock"), seed: "s", node: "a") == 1)
    #expect(try await s.store.read(Fleet.key)?.tokens == Fleet.tokens("sock"))
    await s.stop()
  }

  @Test func aStoreThatIsNotRunningSaysSo() async throws {
    let store = PostgresFleetStore(
      dsn: try PostgresDSN(parsing: "postgresql://u:pw-x@127.0.0.1:1/d"), key: Fleet.randomKey(), node: "n",
      logger: LogCapture().logger())
    let error = await #expect(throws: FleetStoreError.self) { try await store.read(Fleet.key) }
    #expect(error?.message.contains("not running") == true)
    #expect(store.health.state == .starting)
  }
}

import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The LISTEN connection is replaced whenever it dies, and when it stops answering.
@Suite(.enabled(if: PostgresFixture.isAvailable)) struct FleetListenTests {
  static let listener = "SELECT pid FROM pg_stat_activity WHERE application_name = 'token-broker-listen'"

  @Test func aListenConnectionThatIsKilledOrStopsAnsweringIsReplaced() async throws {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    var options = Fleet.quick
    options.listenKeepAlive = .milliseconds(200)
    let a = try await Fleet.start(pg, node: "node-a", key: Fleet.randomKey(), options: options)
    // Ended by the server (an administrator, a failover proxy): a new LISTEN at once.
    try await pg.psql("SELECT pg_terminate_backend(pid) FROM (\(Self.listener)) l")
    try await a.changes.wait(for: .resubscribed, times: 2)
    // Silent (a frozen server or a dead network path): the keep-alive gets no answer, the
    // connection is dropped and made again.
    let pid = try #require(pid_t(try await pg.psql(Self.listener + " ORDER BY backend_start DESC LIMIT 1")))
    kill(pid, SIGSTOP)
    defer { kill(pid, SIGCONT) }
    try await a.changes.wait(for: .resubscribed, times: 3)
    kill(pid, SIGCONT)
    #expect(try await pg.psql(Self.listener + " AND pid <> \(pid)").isEmpty == false)
    // The new subscription carries notifications.
    let v1 = try await a.store.seed(Fleet.key, tokens: Fleet.tokens("v1"), seed: "s", node: "a")
    try await a.changes.wait(for: .row(id: Fleet.key.id, version: v1))
    #expect(a.store.health.state == .ok)
    await a.stop()
  }
}

import Foundation
import Logging
import Synchronization
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet
import TokenBrokerTestSupport

/// A store under test with its `run()` task, the changes it has seen and its log lines.
final class RunningStore: Sendable {
  let store: PostgresFleetStore
  let task: Task<Void, any Error>
  let changes: ChangeRecorder
  let logs: LogCapture

  init(_ store: PostgresFleetStore, logs: LogCapture) {
    self.store = store
    self.logs = logs
    changes = ChangeRecorder(store.changes)
    task = Task { try await store.run() }
  }

  /// A test that failed half-way leaves no store running.
  deinit { task.cancel() }

  /// `store.ready()`, bounded: a start-up that never ends fails the test instead of hanging it.
  func ready() async throws {
    try await bounded("the store to be ready") { [store] in try await store.ready() }
  }

  /// What `run()` threw, bounded likewise (nil: it returned); `run()` is cancelled on a timeout.
  func outcome() async throws -> (any Error)? {
    try await bounded("run() to end") { [task] in
      let result = await withTaskCancellationHandler {
        await task.result
      } onCancel: {
        task.cancel()
      }
      if case .failure(let e) = result { return e }
      return nil
    }
  }

  /// Ends `run()` (the pool and the LISTEN connection close); what `run()` threw, if anything.
  @discardableResult
  func stop() async -> (any Error)? {
    task.cancel()
    if case .failure(let e) = await task.result { return e }
    return nil
  }
}

/// Collects a store's `changes` as they come; `wait` returns once one matches.
final class ChangeRecorder: Sendable {
  private let seen = Mutex<[FleetChange]>([])

  init(_ stream: AsyncStream<FleetChange>) {
    // Ends with the stream, when the store's run() ends.
    Task {
      for await change in stream { self.seen.withLock { $0.append(change) } }
    }
  }

  var all: [FleetChange] { seen.withLock { $0 } }

  func count(of change: FleetChange) -> Int { all.filter { $0 == change }.count }

  /// Waits until `change` has been seen `times` times; the bound only guards against a hang.
  func wait(for change: FleetChange, times: Int = 1, within seconds: Double = 60) async throws {
    try await until("\(change) seen \(times) time(s); seen: \(all)", within: seconds) {
      self.count(of: change) >= times
    }
  }
}

/// `body`'s result, or a ``SetupError`` after `seconds` (a guard against a hang, not a timing
/// check): `body` is cancelled then.
func bounded<T: Sendable>(
  _ what: String, within seconds: Double = 60, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: .seconds(seconds))
      throw SetupError("timed out waiting for \(what)")
    }
    defer { group.cancelAll() }
    return try await group.next()!
  }
}

enum Fleet {
  static func randomKey() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255) } }

  static let key = FleetKey(provider: "github", scopes: "repo", identity: "0123456789abcdef")
  static let otherKey = FleetKey(provider: "gitlab", scopes: "", identity: "fedcba9876543210")

  static func tokens(_ tag: String, refresh: Bool = true) -> FleetTokens {
    FleetTokens(
      token: Token(
        accessToken: "at-secret-\(tag)", tokenType: "Bearer", issuedAt: 1_700_000_000.25,
        expiresAt: 1_700_003_600.5, scope: ["repo", "read:org"]),
      refreshToken: refresh ? "rt-secret-\(tag)" : nil)
  }

  /// A started store on `pg` (run() running, ready() returned).
  static func start(
    _ pg: PostgresFixture, fleet: String = "default", node: String = "node-a", key: [UInt8],
    dsn: String? = nil, options: PostgresFleetStore.Options = .init()
  ) async throws -> RunningStore {
    let running = try launch(pg, fleet: fleet, node: node, key: key, dsn: dsn, options: options)
    try await running.ready()
    return running
  }

  /// A store whose run() was started, not awaited.
  static func launch(
    _ pg: PostgresFixture, fleet: String = "default", node: String = "node-a", key: [UInt8],
    dsn: String? = nil, options: PostgresFleetStore.Options = .init()
  ) throws -> RunningStore {
    let logs = LogCapture()
    let store = PostgresFleetStore(
      dsn: try PostgresDSN(parsing: dsn ?? pg.dsn), key: key, fleet: fleet, node: node,
      logger: logs.logger(label: "fleet-\(node)"), options: options)
    return RunningStore(store, logs: logs)
  }

  /// Options for outage tests: short statement bound and reconnection delays.
  static var quick: PostgresFleetStore.Options {
    var o = PostgresFleetStore.Options()
    o.operationTimeout = .seconds(3)
    o.reconnectDelay = .milliseconds(50)
    o.maximumReconnectDelay = .milliseconds(500)
    return o
  }

  /// The secrets that must never appear in a message or a log line.
  static func secrets(_ pg: PostgresFixture, key: [UInt8], tags: [String]) -> [String] {
    [pg.password, hex(key), base64(key)] + tags.flatMap { ["at-secret-\($0)", "rt-secret-\($0)"] }
  }

  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
  }

  static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

extension PostgresFixture {
  /// `SELECT count(*) ...` as a number.
  func count(_ from: String) async throws -> Int {
    Int(try await psql("SELECT count(*) FROM \(from)")) ?? -1
  }

  /// A digest of everything the fleet tables hold, to show that nothing was written.
  func snapshot() async throws -> String {
    try await psql(
      """
      SELECT md5(coalesce((SELECT string_agg(fleet || id || version || epoch || coalesce(seed, '')
        || coalesce(encode(at_ct, 'hex'), '') || coalesce(encode(rt_ct, 'hex'), '')
        || coalesce(claim_holder, '') || coalesce(claim_until::text, ''), ',' ORDER BY fleet, id)
        FROM token_broker_credentials), '') || coalesce((SELECT string_agg(fleet || encode(ct, 'hex'), ','
        ORDER BY fleet) FROM token_broker_keycheck), ''))
      """)
  }

  /// Ends every live claim in the fleet's rows: a lease run out, on the database's clock.
  func expireClaims() async throws {
    try await psql(
      "UPDATE token_broker_credentials SET claim_until = now() - interval '1 second' WHERE claim_until IS NOT NULL"
    )
  }
}

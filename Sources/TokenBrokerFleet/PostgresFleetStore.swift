import Logging
import PostgresNIO
import Synchronization
import TokenBrokerCore
import TokenBrokerEngine

/// The fleet's shared store on PostgreSQL (README "Fleet"): claims are leases on the database's
/// clock, commits are compare-and-set on (version, epoch), changes are announced with `NOTIFY
/// token_broker, 'FLEET|VERSION|ID'`, and every token is sealed with AES-256-GCM before it is
/// sent. Several fleets may share one database: every row and notification names its fleet.
///
/// `run()` must be running (it runs the connection pool, prepares the tables, checks the key
/// and keeps a LISTEN connection); `ready()` returns once it has. Statements wait for start-up,
/// each bounded by `Options.operationTimeout`, and fail with `.unreachable` when it passes.
package final class PostgresFleetStore: FleetStore, Sendable {
  package struct Options: Sendable {
    /// The longest a statement (with the wait for a connection) may take before `.unreachable`.
    package var operationTimeout: Duration = .seconds(10)
    /// The first reconnection delay; it doubles per failed attempt up to `maximumReconnectDelay`.
    package var reconnectDelay: Duration = .milliseconds(100)
    package var maximumReconnectDelay: Duration = .seconds(10)
    /// How often the LISTEN connection is checked with a `SELECT 1` (a dead peer is otherwise
    /// noticed only when TCP gives up).
    package var listenKeepAlive: Duration = .seconds(30)
    /// Connections in the pool (besides the LISTEN connection).
    package var maximumConnections = 4

    package init() {}
  }

  package let fleet: String
  package let node: String
  package let dsn: PostgresDSN
  package let options: Options
  package let changes: AsyncStream<FleetChange>

  let cipher: Result<FleetCipher, FleetStoreError>
  let client: PostgresClient
  let logger: Logger
  /// What postgres-nio itself logs: notice and above only (below, it logs statements).
  let driverLogger: Logger
  let context: FleetErrorContext
  let changeSink: AsyncStream<FleetChange>.Continuation
  let state = Mutex(FleetStoreState())

  /// `key`: the 32-byte `[fleet] key`; `fleet`: the fleet's name; `node`: this broker's name in
  /// claims. Nothing connects until `run()`.
  package init(
    dsn: PostgresDSN, key: [UInt8], fleet: String = "default", node: String, logger: Logger,
    options: Options = Options()
  ) {
    self.dsn = dsn
    self.fleet = fleet
    self.node = node
    self.options = options
    var logger = logger
    logger[metadataKey: "fleet"] = "\(fleet)"
    self.logger = logger
    var driverLogger = logger
    driverLogger.logLevel = max(logger.logLevel, .notice)
    self.driverLogger = driverLogger
    do throws(FleetStoreError) {
      cipher = .success(try FleetCipher(key: key))
    } catch {
      cipher = .failure(FleetStoreError(error.code, "fleet \(fleet): \(error.message)"))
    }
    context = FleetErrorContext(fleet: fleet, endpoint: dsn.endpoint, user: dsn.user)
    client = PostgresClient(
      configuration: dsn.clientConfiguration(
        connectTimeout: options.operationTimeout, maximumConnections: options.maximumConnections),
      backgroundLogger: driverLogger)
    (changes, changeSink) = AsyncStream.makeStream(of: FleetChange.self)
  }

  /// Ok, unreachable (and why), starting or failed: never waits.
  package var health: FleetStoreHealth { state.withLock { $0.health } }

  /// Returns once the tables are ready, the key is checked and the LISTEN is live (so a change
  /// committed from then on reaches `changes`); throws start-up's error (`.keyMismatch`,
  /// `.refused`) if it failed for good. Waits (cancellably) while the database is unreachable.
  package func ready() async throws {
    try await state.wait(for: .listening)
  }

  // MARK: - Statements

  /// Runs `body` once start-up is done, within `operationTimeout`, and maps what it throws.
  @discardableResult
  func perform<T: Sendable>(_ doing: String, _ body: @escaping @Sendable () async throws -> T) async throws
    -> T
  {
    let early: FleetStoreError? = state.withLock { s in
      switch s.phase {
      case .idle:
        return FleetStoreError(
          .unreachable, "fleet \(fleet): cannot \(doing): the store is not running (run() was not started)")
      case .stopped:
        return FleetStoreError(.unreachable, "fleet \(fleet): cannot \(doing): the store has stopped")
      case .failed(let e): return e
      case .starting(let last?):
        return FleetStoreError(
          last.code, "fleet \(fleet): cannot \(doing): the store has not started yet (\(last.message))")
      case .starting(nil), .started: return nil
      }
    }
    if let early { throw early }
    do {
      let value = try await withDeadline(options.operationTimeout) {
        try await self.state.wait(for: .started)
        return try await body()
      }
      state.withLock { s in
        if case .started = s.phase { s.health.state = .ok }
      }
      return value
    } catch {
      let e = failure(error, doing)
      record(e)
      throw e
    }
  }

  /// `error` as a `FleetStoreError` about `doing`.
  func failure(_ error: any Error, _ doing: String) -> FleetStoreError {
    guard error is DeadlineExceeded else { return context.map(error, doing) }
    let seconds = options.operationTimeout.components.seconds
    let last = state.withLock { $0.lastConnectError }
    return context.unreachable(
      doing, "no answer within \(seconds) s" + (last.map { "; last connection error: \($0)" } ?? ""))
  }

  /// Notes `e` in the health (unreachable: the state too) and the log.
  func record(_ e: FleetStoreError) {
    state.withLock { s in
      s.health.lastError = e.message
      if e.code == .unreachable, case .started = s.phase { s.health.state = .unreachable }
    }
    let level: Logger.Level = e.code == .unreachable ? .warning : .error
    logger.log(level: level, "\(e.message)", metadata: ["event": "\(Self.event(e.code))"])
  }

  static func event(_ code: FleetStoreError.Code) -> String {
    switch code {
    case .unreachable: "fleet_unreachable"
    case .keyMismatch: "fleet_key_mismatch"
    case .tampered: "fleet_tampered"
    case .refused: "fleet_refused"
    }
  }

  func nextConnectionID() -> Int {
    state.withLock { s in
      s.nextConnectionID += 1
      return s.nextConnectionID
    }
  }

  // MARK: - Rows

  /// A row as selected: `version, epoch, seed, at_ct, rt_ct, holder, remaining, refresher`.
  struct StoredRow: Sendable {
    var version: Int64
    var epoch: Int64
    var seed: String?
    var accessCT: [UInt8]?
    var refreshCT: [UInt8]?
    var holder: String?
    var claimRemaining: Double?
    var refresher: String?

    init(_ row: PostgresRow) throws {
      let (version, epoch, seed, at, rt, holder, remaining, refresher) = try row.decode(
        (Int64, Int64, String?, ByteBuffer?, ByteBuffer?, String?, Double?, String?).self)
      self.refresher = refresher
      self.version = version
      self.epoch = epoch
      self.seed = seed
      self.accessCT = at.map { Array($0.readableBytesView) }
      self.refreshCT = rt.map { Array($0.readableBytesView) }
      self.holder = holder
      self.claimRemaining = remaining
    }
  }

  /// The select list `StoredRow` decodes: the holder and time left only of a live claim, on the
  /// database's clock.
  static let columns =
    "version, epoch, seed, at_ct, rt_ct, CASE WHEN claim_until > now() THEN claim_holder END, "
    + "CASE WHEN claim_until > now() THEN extract(epoch FROM claim_until - now())::float8 END, refresher"

  /// The row in the clear; `.tampered` when a ciphertext does not authenticate under its
  /// fleet, row, version and part.
  func decrypt(_ stored: StoredRow, _ key: FleetKey) throws(FleetStoreError) -> FleetRow {
    var tokens: FleetTokens?
    // Logged out only with the sealed mark: the `seed` column alone is not authenticated.
    let seed = stored.seed == FleetRow.loggedOutSeed ? nil : stored.seed
    if let at = stored.accessCT {
      let cipher = try cipher.get()
      func open(_ ct: [UInt8], _ part: FleetCipher.Part) throws(FleetStoreError) -> [UInt8] {
        do {
          return try cipher.open(
            ct, aad: FleetCipher.aad(fleet: fleet, id: key.id, version: stored.version, part: part))
        } catch {
          let e = FleetStoreError(
            .tampered,
            "fleet \(fleet): the \(part == .accessToken ? "access" : "refresh") token of \(key) (version "
              + "\(stored.version)) does not authenticate: it was changed in the database, copied from another "
              + "row or version, or written with another key; it was not used. Log in again "
              + "(tokenctl login \(key.provider)) to write a new one, or restore the row from a backup")
          record(e)
          throw e
        }
      }
      let access = try open(at, .accessToken)
      let refresh = try stored.refreshCT.map { ct throws(FleetStoreError) in try open(ct, .refreshToken) }
      if access == FleetTokenBlob.loggedOut {
        return FleetRow(
          key: key, version: stored.version, epoch: stored.epoch, seed: FleetRow.loggedOutSeed, tokens: nil,
          holder: stored.holder, claimRemaining: stored.claimRemaining, refresher: stored.refresher)
      }
      guard let t = FleetTokenBlob.decode(access: access, refresh: refresh) else {
        let e = context.refused(
          "read \(key)", "its tokens are in a format this broker does not read (version \(stored.version))",
          "upgrade token-broker on this host to the version the other brokers run")
        record(e)
        throw e
      }
      tokens = t
    }
    return FleetRow(
      key: key, version: stored.version, epoch: stored.epoch, seed: seed, tokens: tokens,
      holder: stored.holder, claimRemaining: stored.claimRemaining, refresher: stored.refresher)
  }

  /// `FLEET|VERSION|ID`, the NOTIFY payload.
  func payload(_ id: String, _ version: Int64) -> String { "\(fleet)|\(version)|\(id)" }
}

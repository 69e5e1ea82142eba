import Logging
import PostgresNIO
import TokenBrokerEngine

/// The fleet's tables, created and migrated by the brokers themselves: every broker runs
/// `prepare` at start, in one transaction under a transaction-level advisory lock, so two
/// brokers starting at once neither race on `CREATE TABLE` nor migrate twice. A schema that is
/// already current is only read: a role with the data grants alone (no CREATE) can start.
enum FleetSchema {
  /// The schema version this broker writes and reads.
  static let version = 1
  /// `pg_advisory_xact_lock` key: "tbfleet\0" as a big-endian integer.
  static let lockKey: Int64 = 0x7462_666C_6565_7400
  /// The channel every broker of every fleet on the database listens on.
  static let channel = "token_broker"

  /// Statements that take the schema from version `index` to `index + 1`.
  static let migrations: [[PostgresQuery]] = [
    [
      "CREATE TABLE IF NOT EXISTS token_broker_schema (version integer NOT NULL)",
      """
      CREATE TABLE IF NOT EXISTS token_broker_keycheck (
        fleet text PRIMARY KEY,
        ct bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())
      """,
      """
      CREATE TABLE IF NOT EXISTS token_broker_credentials (
        fleet text NOT NULL,
        id text NOT NULL,
        provider text NOT NULL,
        version bigint NOT NULL DEFAULT 0,
        epoch bigint NOT NULL DEFAULT 0,
        seed text,
        at_ct bytea,
        rt_ct bytea,
        claim_holder text,
        claim_until timestamptz,
        refresher text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (fleet, id))
      """,
      """
      CREATE INDEX IF NOT EXISTS token_broker_credentials_provider
        ON token_broker_credentials (fleet, provider)
      """,
    ]
  ]

  /// Creates or migrates the tables, then checks (or, for a new fleet, stores) the fleet's key
  /// check, all in one transaction. Returns the schema version found (0: none).
  static func prepare(
    on connection: PostgresConnection, fleet: String, cipher: FleetCipher, context: FleetErrorContext,
    logger: Logger
  ) async throws -> Int {
    try await connection.withTransaction(logger: logger) { c in
      try await c.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
      let found = try await installedVersion(on: c, logger: logger)
      guard found <= version else {
        throw context.refused(
          "start", "the fleet's tables are at schema version \(found), newer than this broker's (\(version))",
          "upgrade token-broker on this host to the version the other brokers run")
      }
      if found < version {
        for step in migrations[found..<version] {
          for statement in step { try await c.query(statement, logger: logger) }
        }
        if found == 0 {
          try await c.query("INSERT INTO token_broker_schema (version) VALUES (\(version))", logger: logger)
        } else {
          try await c.query("UPDATE token_broker_schema SET version = \(version)", logger: logger)
        }
      }
      try await checkKey(on: c, fleet: fleet, cipher: cipher, context: context, logger: logger)
      return found
    }
  }

  static func installedVersion(on c: PostgresConnection, logger: Logger) async throws -> Int {
    let exists = try await c.query("SELECT to_regclass('token_broker_schema')::text", logger: logger)
      .collect().first?.decode(String?.self)
    guard exists != nil else { return 0 }
    let v = try await c.query("SELECT coalesce(max(version), 0) FROM token_broker_schema", logger: logger)
      .collect().first?.decode(Int32.self)
    return Int(v ?? 0)
  }

  /// A new fleet gets a key check sealed with this key; an existing one must open with it.
  static func checkKey(
    on c: PostgresConnection, fleet: String, cipher: FleetCipher, context: FleetErrorContext, logger: Logger
  ) async throws {
    var stored = try await c.query(
      "SELECT ct FROM token_broker_keycheck WHERE fleet = \(fleet)", logger: logger
    ).collect().first?.decode(ByteBuffer.self)
    if stored == nil {
      let sealed = ByteBuffer(bytes: cipher.sealKeyCheck(fleet: fleet))
      try await c.query(
        "INSERT INTO token_broker_keycheck (fleet, ct) VALUES (\(fleet), \(sealed)) ON CONFLICT (fleet) DO NOTHING",
        logger: logger)
      stored = try await c.query(
        "SELECT ct FROM token_broker_keycheck WHERE fleet = \(fleet)", logger: logger
      ).collect().first?.decode(ByteBuffer.self)
    }
    guard let stored, cipher.opensKeyCheck(Array(stored.readableBytesView), fleet: fleet) else {
      throw FleetStoreError(
        .keyMismatch,
        "fleet \(fleet): the [fleet] key differs from the one that created fleet \(fleet) in "
          + "\(context.endpoint) (its key check does not open with this key); nothing was read or written. "
          + "Use the same [fleet] key on every broker of the fleet (or, to start a new fleet, another fleet name)"
      )
    }
  }
}

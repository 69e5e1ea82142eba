import Logging
import PostgresNIO
import TokenBrokerCore
import TokenBrokerEngine

/// The `FleetStore` statements. Each is one statement, or one transaction on one connection;
/// the claim's lease and liveness are decided by the database's `now()`, never this host's clock.
extension PostgresFleetStore {
  package func read(_ key: FleetKey) async throws -> FleetRow? {
    let (fleet, logger) = (self.fleet, driverLogger)
    let stored = try await perform("read \(key)") {
      try await self.client.query(
        """
        SELECT \(unescaped: Self.columns) FROM token_broker_credentials
        WHERE fleet = \(fleet) AND id = \(key.id)
        """, logger: logger
      ).collect().first.map(StoredRow.init)
    }
    return try stored.map { s throws(FleetStoreError) in try decrypt(s, key) }
  }

  package func claim(_ key: FleetKey, version: Int64?, node: String, lease: Double) async throws
    -> FleetClaim?
  {
    let (fleet, logger) = (self.fleet, driverLogger)
    let doing = "claim the refresh of \(key)\(version.map { " at version \($0)" } ?? "")"
    let stored = try await perform(doing) { () async throws -> StoredRow? in
      let rows: PostgresRowSequence
      if let version {
        rows = try await self.client.query(
          """
          UPDATE token_broker_credentials
          SET claim_holder = \(node), claim_until = now() + make_interval(secs => \(lease)),
              epoch = epoch + 1, updated_at = now()
          WHERE fleet = \(fleet) AND id = \(key.id) AND version = \(version)
            AND (claim_until IS NULL OR claim_until < now() OR claim_holder = \(node))
          RETURNING \(unescaped: Self.columns)
          """, logger: logger)
      } else {
        // No row yet: the claim creates it at version 0; a version-0 row (a claim that never
        // committed) is claimed as above.
        rows = try await self.client.query(
          """
          INSERT INTO token_broker_credentials AS c
            (fleet, id, provider, version, epoch, claim_holder, claim_until, updated_at)
          VALUES (\(fleet), \(key.id), \(key.provider), 0, 1, \(node),
                  now() + make_interval(secs => \(lease)), now())
          ON CONFLICT (fleet, id) DO UPDATE
          SET claim_holder = excluded.claim_holder, claim_until = excluded.claim_until,
              epoch = c.epoch + 1, updated_at = now()
          WHERE c.version = 0 AND (c.claim_until IS NULL OR c.claim_until < now() OR c.claim_holder = \(node))
          RETURNING \(unescaped: Self.columns)
          """, logger: logger)
      }
      return try await rows.collect().first.map(StoredRow.init)
    }
    guard let stored else {
      logger.debug("claim not granted", metadata: ["event": "fleet_claim_lost", "row": "\(key)"])
      return nil
    }
    let row = try decrypt(stored, key)
    logger.debug(
      "claimed",
      metadata: ["event": "fleet_claimed", "row": "\(key)", "version": "\(row.version)", "node": "\(node)"])
    return FleetClaim(row: row, lease: lease)
  }

  package func commit(_ claim: FleetClaim, tokens: FleetTokens, seed: String?) async throws -> Bool {
    let (fleet, logger) = (self.fleet, driverLogger)
    let key = claim.row.key
    let (version, epoch) = (claim.row.version, claim.row.epoch)
    let next = version + 1
    let (at, rt) = try sealed(tokens, key, version: next)
    let payload = self.payload(key.id, next)
    let committed = try await perform("commit \(key) as version \(next)") {
      try await self.client.withTransaction(logger: logger) { c in
        let updated = try await c.query(
          """
          UPDATE token_broker_credentials
          SET at_ct = \(at), rt_ct = \(rt), seed = coalesce(\(seed), seed), version = version + 1,
              refresher = claim_holder, claim_holder = NULL, claim_until = NULL, updated_at = now()
          WHERE fleet = \(fleet) AND id = \(key.id) AND version = \(version) AND epoch = \(epoch)
          RETURNING version
          """, logger: logger
        ).collect()
        guard updated.count == 1 else { return false }
        try await c.query("SELECT pg_notify(\(FleetSchema.channel), \(payload))", logger: logger)
        return true
      }
    }
    if committed {
      self.logger.debug(
        "committed", metadata: ["event": "fleet_committed", "row": "\(key)", "version": "\(next)"])
    } else {
      let message =
        "fleet \(fleet): the commit of \(key) as version \(next) was fenced: the claim on version \(version) "
        + "(epoch \(epoch)) lapsed and another broker moved the row on; nothing was written, "
        + "follow the row as stored"
      self.logger.error(
        "\(message)",
        metadata: ["event": "fleet_fenced", "row": "\(key)", "version": "\(version)", "epoch": "\(epoch)"])
    }
    return committed
  }

  package func release(_ claim: FleetClaim) async throws {
    let (fleet, logger) = (self.fleet, driverLogger)
    let key = claim.row.key
    let (version, epoch) = (claim.row.version, claim.row.epoch)
    try await perform("release the claim on \(key)") {
      try await self.client.query(
        """
        UPDATE token_broker_credentials SET claim_holder = NULL, claim_until = NULL, updated_at = now()
        WHERE fleet = \(fleet) AND id = \(key.id) AND version = \(version) AND epoch = \(epoch)
        """, logger: logger)
    }
  }

  package func seed(_ key: FleetKey, tokens: FleetTokens, seed: String, node: String) async throws -> Int64 {
    let (fleet, logger) = (self.fleet, driverLogger)
    let cipher = try self.cipher.get()
    let version = try await perform("write the login of \(key)") {
      try await self.client.withTransaction(logger: logger) { c in
        try await c.query(
          """
          INSERT INTO token_broker_credentials (fleet, id, provider, version, epoch, updated_at)
          VALUES (\(fleet), \(key.id), \(key.provider), 0, 0, now()) ON CONFLICT (fleet, id) DO NOTHING
          """, logger: logger)
        let current = try await c.query(
          "SELECT version FROM token_broker_credentials WHERE fleet = \(fleet) AND id = \(key.id) FOR UPDATE",
          logger: logger
        ).collect().first?.decode(Int64.self)
        let next = (current ?? 0) + 1
        let (at, rt) = Self.sealed(cipher, fleet, tokens, key, version: next)
        // Any claim is released, and fenced: its version is gone.
        try await c.query(
          """
          UPDATE token_broker_credentials
          SET at_ct = \(at), rt_ct = \(rt), seed = \(seed), version = \(next), epoch = epoch + 1,
              refresher = \(node), claim_holder = NULL, claim_until = NULL, updated_at = now()
          WHERE fleet = \(fleet) AND id = \(key.id)
          """, logger: logger)
        try await c.query(
          "SELECT pg_notify(\(FleetSchema.channel), \(self.payload(key.id, next)))", logger: logger)
        return next
      }
    }
    logger.info(
      "login stored", metadata: ["event": "fleet_seeded", "row": "\(key)", "version": "\(version)"])
    return version
  }

  package func forget(provider: String, node: String) async throws {
    let (fleet, logger) = (self.fleet, driverLogger)
    let cipher = try self.cipher.get()
    let loggedOut = FleetRow.loggedOutSeed
    let gone = try await perform("forget the rows of \(provider)") {
      try await self.client.withTransaction(logger: logger) { c in
        let rows = try await c.query(
          """
          SELECT id, version FROM token_broker_credentials
          WHERE fleet = \(fleet) AND provider = \(provider) FOR UPDATE
          """, logger: logger
        ).collect().map { try $0.decode((String, Int64).self) }
        // Emptied, not deleted: a broker that reads the row (or hears of it) forgets its tokens
        // too, where a missing row would be claimed and refreshed again with its own. The mark
        // is sealed like a token, so only a holder of the key can log the fleet out.
        for (id, version) in rows {
          let next = version + 1
          let mark = ByteBuffer(
            bytes: cipher.seal(
              FleetTokenBlob.loggedOut,
              aad: FleetCipher.aad(fleet: fleet, id: id, version: next, part: .accessToken)))
          try await c.query(
            """
            UPDATE token_broker_credentials
            SET at_ct = \(mark), rt_ct = NULL, seed = \(loggedOut), version = \(next), epoch = epoch + 1,
                refresher = \(node), claim_holder = NULL, claim_until = NULL, updated_at = now()
            WHERE fleet = \(fleet) AND id = \(id)
            """, logger: logger)
          try await c.query(
            "SELECT pg_notify(\(FleetSchema.channel), \(self.payload(id, next)))", logger: logger)
        }
        return rows.count
      }
    }
    logger.info(
      "rows forgotten", metadata: ["event": "fleet_forgotten", "provider": "\(provider)", "rows": "\(gone)"])
  }

  /// The ciphertexts of `tokens` as version `version` of `key` (`rt_ct` nil without a refresh token).
  func sealed(_ tokens: FleetTokens, _ key: FleetKey, version: Int64) throws(FleetStoreError) -> (
    ByteBuffer, ByteBuffer?
  ) {
    Self.sealed(try cipher.get(), fleet, tokens, key, version: version)
  }

  static func sealed(
    _ cipher: FleetCipher, _ fleet: String, _ tokens: FleetTokens, _ key: FleetKey, version: Int64
  ) -> (ByteBuffer, ByteBuffer?) {
    let at = cipher.seal(
      FleetTokenBlob.access(tokens.token),
      aad: FleetCipher.aad(fleet: fleet, id: key.id, version: version, part: .accessToken))
    let rt = tokens.refreshToken.map {
      cipher.seal(
        FleetTokenBlob.refresh($0),
        aad: FleetCipher.aad(fleet: fleet, id: key.id, version: version, part: .refreshToken))
    }
    return (ByteBuffer(bytes: at), rt.map { ByteBuffer(bytes: $0) })
  }
}

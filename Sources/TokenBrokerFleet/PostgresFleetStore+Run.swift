import Logging
import PostgresNIO
import TokenBrokerEngine

/// The store's life: the pool, start-up (tables, key check) and the LISTEN connection.
extension PostgresFleetStore {
  /// Runs until cancelled: the connection pool, then start-up (retried while the database is
  /// unreachable), then the LISTEN connection, reconnected with capped backoff whenever the
  /// database goes away; every (re)subscription yields `.resubscribed`. Throws only when start-up
  /// is refused for good (`.keyMismatch`, `.refused`); returns when cancelled. Call it once.
  package func run() async throws {
    let first = state.withLock { s in
      guard case .idle = s.phase else { return false }
      s.phase = .starting(lastFailure: nil)
      return true
    }
    guard first else {
      throw FleetStoreError(.refused, "fleet \(fleet): run() was called twice on one store")
    }
    defer {
      state.update { s in
        if case .failed = s.phase {} else { s.phase = .stopped }
      }
      changeSink.finish()
    }
    try await withThrowingDiscardingTaskGroup { group in
      group.addTask { await self.client.run() }
      guard try await self.startUp() else {
        group.cancelAll()
        return
      }
      group.addTask { await self.listen() }
    }
  }

  /// false: cancelled before it was done.
  private func startUp() async throws -> Bool {
    var attempt = 0
    while !Task.isCancelled {
      do {
        let cipher = try checkedConfiguration()
        let found = try await withDeadline(options.operationTimeout) {
          try await self.withConnection("token-broker-start") { c in
            try await FleetSchema.prepare(
              on: c, fleet: self.fleet, cipher: cipher, context: self.context, logger: self.driverLogger)
          }
        }
        state.update { s in
          s.phase = .started(listening: false)
          s.health.state = .ok
        }
        logger.info(
          "fleet store ready",
          metadata: [
            "event": "fleet_started", "store": "\(dsn.endpoint)", "node": "\(node)",
            "schema": found == FleetSchema.version ? "current" : "created or migrated from version \(found)",
          ])
        return true
      } catch {
        if Task.isCancelled { return false }
        let e = failure(error, "start the fleet store")
        guard e.code == .unreachable else {
          state.update { s in
            s.phase = .failed(e)
            s.health = FleetStoreHealth(state: .failed, lastError: e.message)
          }
          logger.error("\(e.message)", metadata: ["event": "\(Self.event(e.code))"])
          throw e
        }
        state.update { s in
          s.phase = .starting(lastFailure: e)
          s.health = FleetStoreHealth(state: .unreachable, lastError: e.message)
        }
        logger.log(
          level: attempt == 0 ? .warning : .debug, "\(e.message)",
          metadata: ["event": "fleet_unreachable", "attempt": "\(attempt + 1)"])
      }
      do {
        try await Task.sleep(for: backoff(attempt))
      } catch {
        return false
      }
      attempt += 1
    }
    return false
  }

  /// The cipher, once the fleet's name and the key are known to be usable.
  private func checkedConfiguration() throws(FleetStoreError) -> FleetCipher {
    guard !fleet.isEmpty, !fleet.contains("|") else {
      throw context.refused(
        "start", "the fleet name \"\(fleet)\" is empty or holds a |", "choose another [fleet] name")
    }
    return try cipher.get()
  }

  /// A connection of its own (not the pool's), closed after `body`.
  /// `applicationName` tells the connection apart in `pg_stat_activity`.
  func withConnection<T: Sendable>(
    _ applicationName: String, _ body: (PostgresConnection) async throws -> T
  ) async throws -> T {
    let configuration = try dsn.connectionConfiguration(
      connectTimeout: options.operationTimeout, applicationName: applicationName)
    let connection: PostgresConnection
    do {
      connection = try await PostgresConnection.connect(
        configuration: configuration, id: nextConnectionID(), logger: driverLogger)
    } catch {
      state.withLock { $0.lastConnectError = FleetErrorContext.reason(error) }
      throw error
    }
    do {
      let value = try await body(connection)
      try? await connection.close()
      return value
    } catch {
      try? await connection.close()
      throw error
    }
  }

  /// The LISTEN loop: connect, `LISTEN token_broker`, yield `.resubscribed`, pass on this fleet's
  /// notifications until the connection dies; then again, after a capped backoff.
  private func listen() async {
    var attempt = 0
    while !Task.isCancelled {
      do {
        try await withConnection("token-broker-listen") { c in
          try await c.listen(on: FleetSchema.channel) { notifications in
            subscribed(after: attempt)
            attempt = 0
            try await withThrowingTaskGroup(of: Void.self) { group in
              group.addTask { try await self.keepAlive(c) }
              for try await n in notifications { self.received(n.payload) }
              group.cancelAll()
            }
          }
        }
        if Task.isCancelled { break }
        lost("the connection closed", attempt: attempt)
      } catch {
        if Task.isCancelled { break }
        lost(FleetErrorContext.reason(error), attempt: attempt)
      }
      do {
        try await Task.sleep(for: backoff(attempt))
      } catch {
        break
      }
      attempt += 1
    }
  }

  /// Checks the LISTEN connection now and then; closes it when it does not answer, which ends
  /// the notification sequence and so the subscription.
  private func keepAlive(_ c: PostgresConnection) async throws {
    while !Task.isCancelled {
      try await Task.sleep(for: options.listenKeepAlive)
      do {
        _ = try await withDeadline(options.operationTimeout) {
          try await c.query("SELECT 1", logger: self.driverLogger).collect().count
        }
      } catch is CancellationError {
        return
      } catch {
        try? await c.close()
        return
      }
    }
  }

  private func subscribed(after attempts: Int) {
    state.update { s in
      s.health.state = .ok
      s.lastConnectError = nil
      if case .started = s.phase { s.phase = .started(listening: true) }
    }
    changeSink.yield(.resubscribed)
    logger.info(
      attempts == 0
        ? "listening for the fleet's changes" : "reconnected; listening for the fleet's changes again",
      metadata: ["event": "fleet_subscribed"])
  }

  /// The LISTEN connection failed or could not be made: a warning the first time, then debug
  /// lines until it is back (an outage logs once, not once per attempt).
  private func lost(_ why: String, attempt: Int) {
    let message =
      attempt == 0
      ? "fleet \(fleet): lost the LISTEN connection to \(dsn.endpoint) (\(why)); reconnecting"
      : "fleet \(fleet): cannot reconnect to \(dsn.endpoint) (\(why)); retrying"
    state.withLock { s in
      s.health = FleetStoreHealth(state: .unreachable, lastError: message)
      s.lastConnectError = why
    }
    logger.log(
      level: attempt == 0 ? .warning : .debug, "\(message)",
      metadata: ["event": "fleet_unreachable", "attempt": "\(attempt + 1)"])
  }

  /// `FLEET|VERSION|ID`: this fleet's changes go on; other fleets' and malformed ones do not.
  func received(_ payload: String) {
    let parts = payload.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0] == fleet, let version = Int64(parts[1]) else { return }
    changeSink.yield(.row(id: String(parts[2]), version: version))
  }

  /// `reconnectDelay · 2^attempt`, at most `maximumReconnectDelay`, less up to a fifth at random
  /// (brokers that lost the database together do not come back in step).
  func backoff(_ attempt: Int) -> Duration {
    let base = options.reconnectDelay * (1 << min(attempt, 20))
    let capped = min(base, options.maximumReconnectDelay)
    return capped - capped * Double.random(in: 0..<0.2)
  }
}

import NIOConcurrencyHelpers
import TokenBrokerCore
import TokenBrokerEngine

/// A fleet's database in memory, with the semantics of the PostgreSQL store (claim with a
/// lease on the database's clock, commit fenced by version and epoch, announcements to every
/// member): the engine tests run several brokers on a manual clock against it, and take it
/// down, drop its announcements or move a claim's lease on at will.
package final class MemoryFleetDatabase: Sendable {
  struct Row {
    var version: Int64
    var epoch: Int64
    var seed: String?
    var tokens: FleetTokens?
    var holder: String?
    var claimUntil: Double?
    var refresher: String?
  }

  struct State {
    var rows: [String: (key: FleetKey, row: Row)] = [:]
    var reachable = true
    var announce = true
    var subscribers: [Int: AsyncStream<FleetChange>.Continuation] = [:]
    var nextSubscriber = 0
    var commits = 0
    var fenced = 0
  }

  private let state = NIOLockedValueBox(State())
  let now: @Sendable () -> Double

  /// `now`: the database's clock.
  package init(now: @escaping @Sendable () -> Double) { self.now = now }

  /// Takes the database down (calls throw `.unreachable`) or brings it back (every member
  /// is told `.resubscribed`).
  package func setReachable(_ up: Bool) {
    let subscribers = state.withLockedValue { s -> [AsyncStream<FleetChange>.Continuation] in
      s.reachable = up
      return up ? Array(s.subscribers.values) : []
    }
    for c in subscribers { c.yield(.resubscribed) }
  }

  /// Announcements lost (a dropped connection's NOTIFY): members learn of commits by reading.
  package func setAnnouncing(_ on: Bool) { state.withLockedValue { $0.announce = on } }

  /// Ends the claim on `key` now, as if its lease ran out.
  package func expireClaim(_ key: FleetKey) {
    state.withLockedValue { s in s.rows[key.id]?.row.claimUntil = now() - 1 }
  }

  package var commits: Int { state.withLockedValue { $0.commits } }
  package var fencedWrites: Int { state.withLockedValue { $0.fenced } }

  package func row(_ key: FleetKey) -> FleetRow? {
    state.withLockedValue { s in s.rows[key.id].map { Self.view($0.key, $0.row, now: now()) } }
  }

  package func store(node: String) -> MemoryFleetStore {
    let (stream, continuation) = AsyncStream<FleetChange>.makeStream()
    let id = state.withLockedValue { s -> Int in
      s.nextSubscriber += 1
      s.subscribers[s.nextSubscriber] = continuation
      return s.nextSubscriber
    }
    return MemoryFleetStore(database: self, subscriber: id, changes: stream)
  }

  /// Ends every member's announcements (their follow loops return).
  package func close() {
    let all = state.withLockedValue { s -> [AsyncStream<FleetChange>.Continuation] in
      defer { s.subscribers.removeAll() }
      return Array(s.subscribers.values)
    }
    for c in all { c.finish() }
  }

  static func view(_ key: FleetKey, _ r: Row, now: Double) -> FleetRow {
    let live = r.claimUntil.map { $0 > now } ?? false
    return FleetRow(
      key: key, version: r.version, epoch: r.epoch, seed: r.seed, tokens: r.tokens,
      holder: live ? r.holder : nil,
      claimRemaining: live ? r.claimUntil! - now : nil, refresher: r.refresher)
  }

  func locked<T>(_ body: (inout State, Double) throws(FleetStoreError) -> T) throws(FleetStoreError) -> T {
    let now = self.now()
    let result = state.withLockedValue { s -> Result<T, FleetStoreError> in
      guard s.reachable else {
        return .failure(FleetStoreError(.unreachable, "the fleet's database is down"))
      }
      return Result { () throws(FleetStoreError) -> T in try body(&s, now) }
    }
    return try result.get()
  }

  func announce(_ id: String, _ version: Int64) {
    let subscribers = state.withLockedValue { s in s.announce ? Array(s.subscribers.values) : [] }
    for c in subscribers { c.yield(.row(id: id, version: version)) }
  }
}

/// One broker's connection to a ``MemoryFleetDatabase``.
package final class MemoryFleetStore: FleetStore {
  let database: MemoryFleetDatabase
  let subscriber: Int
  package let changes: AsyncStream<FleetChange>

  init(database: MemoryFleetDatabase, subscriber: Int, changes: AsyncStream<FleetChange>) {
    self.database = database
    self.subscriber = subscriber
    self.changes = changes
  }

  package func read(_ key: FleetKey) async throws -> FleetRow? {
    try database.locked { s, now in s.rows[key.id].map { MemoryFleetDatabase.view(key, $0.row, now: now) } }
  }

  package func claim(_ key: FleetKey, version: Int64?, node: String, lease: Double) async throws
    -> FleetClaim?
  {
    try database.locked { s, now in
      var row = s.rows[key.id]?.row ?? MemoryFleetDatabase.Row(version: 0, epoch: 0)
      guard row.version == (version ?? 0) else { return nil }
      if let until = row.claimUntil, until > now, row.holder != node { return nil }
      row.epoch += 1
      row.holder = node
      row.claimUntil = now + lease
      s.rows[key.id] = (key, row)
      return FleetClaim(row: MemoryFleetDatabase.view(key, row, now: now), lease: lease)
    }
  }

  package func commit(_ claim: FleetClaim, tokens: FleetTokens, seed: String?) async throws -> Bool {
    let key = claim.row.key
    let version: Int64? = try database.locked { s, _ in
      guard var row = s.rows[key.id]?.row, row.version == claim.row.version, row.epoch == claim.row.epoch
      else {
        s.fenced += 1
        return nil
      }
      row.version += 1
      row.tokens = tokens
      row.seed = seed
      row.refresher = row.holder
      row.holder = nil
      row.claimUntil = nil
      s.rows[key.id] = (key, row)
      s.commits += 1
      return row.version
    }
    guard let version else { return false }
    database.announce(key.id, version)
    return true
  }

  package func release(_ claim: FleetClaim) async throws {
    try database.locked { s, _ in
      let key = claim.row.key
      guard var row = s.rows[key.id]?.row, row.epoch == claim.row.epoch else { return }
      row.holder = nil
      row.claimUntil = nil
      s.rows[key.id] = (key, row)
    }
  }

  package func seed(_ key: FleetKey, tokens: FleetTokens, seed: String, node: String) async throws -> Int64 {
    let version = try database.locked { s, _ -> Int64 in
      var row = s.rows[key.id]?.row ?? MemoryFleetDatabase.Row(version: 0, epoch: 0)
      row.version += 1
      row.tokens = tokens
      row.seed = seed
      row.refresher = node
      row.holder = nil
      row.claimUntil = nil
      s.rows[key.id] = (key, row)
      return row.version
    }
    database.announce(key.id, version)
    return version
  }

  package func forget(provider: String, node: String) async throws {
    let emptied = try database.locked { s, _ -> [(String, Int64)] in
      var out: [(String, Int64)] = []
      for (id, entry) in s.rows where entry.key.provider == provider {
        var row = entry.row
        row.version += 1
        row.epoch += 1
        row.tokens = nil
        row.seed = FleetRow.loggedOutSeed
        row.refresher = node
        row.holder = nil
        row.claimUntil = nil
        s.rows[id] = (entry.key, row)
        out.append((id, row.version))
      }
      return out
    }
    for (id, version) in emptied { database.announce(id, version) }
  }
}

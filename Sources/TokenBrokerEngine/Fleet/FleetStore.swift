import TokenBrokerCore

/// Which shared token a fleet row holds: one per (provider, scope set, credential identity).
/// The identity is part of the key, so brokers whose configurations name a different
/// `token_url`, `client_id`, `username` or grant never share a refresh token (README "Fleet").
package struct FleetKey: Hashable, Sendable, CustomStringConvertible {
  package var provider: String
  /// `ScopeSet.description` (sorted, space-separated); "" for the provider's configured scopes.
  package var scopes: String
  /// `CredentialIdentity.fingerprint`.
  package var identity: String

  package init(provider: String, scopes: String, identity: String) {
    self.provider = provider
    self.scopes = scopes
    self.identity = identity
  }

  /// The row's key in the store, and part of its ciphertexts' associated data.
  package var id: String { "\(provider)|\(scopes)|\(identity)" }
  package var description: String { scopes.isEmpty ? provider : "\(provider) [\(scopes)]" }
}

/// The secret part of a row, in the clear only inside the brokers: a token and the refresh
/// token in force, exactly what a token response carries (its description redacts both).
package typealias FleetTokens = TokenResponse

/// One row as read: who holds its refresh, and its tokens (decrypted).
package struct FleetRow: Sendable, Equatable {
  package var key: FleetKey
  /// Bumped by every commit and every seed: the fence.
  package var version: Int64
  /// Bumped by every claim: a commit names the claim it belongs to.
  package var epoch: Int64
  /// Fingerprint of the seed (login or configured refresh token) this row descends from.
  package var seed: String?
  package var tokens: FleetTokens?
  /// The node whose claim is live, if any (the database's clock decides).
  package var holder: String?
  /// Seconds the live claim has left on the database's clock (nil: no live claim).
  package var claimRemaining: Double?
  /// The node whose commit (or login, or logout) wrote this version.
  package var refresher: String?

  /// The `seed` of a row a logout emptied: no tokens, and no broker refreshes it until a login
  /// (`FleetStore.seed`) writes a new version (README "Fleet").
  package static let loggedOutSeed = "logged_out"

  /// A logout on `refresher` emptied the row: every broker forgets the provider's tokens.
  package var loggedOut: Bool { seed == Self.loggedOutSeed }

  package init(
    key: FleetKey, version: Int64, epoch: Int64, seed: String?, tokens: FleetTokens?, holder: String?,
    claimRemaining: Double?, refresher: String? = nil
  ) {
    self.refresher = refresher
    self.key = key
    self.version = version
    self.epoch = epoch
    self.seed = seed
    self.tokens = tokens
    self.holder = holder
    self.claimRemaining = claimRemaining
  }
}

/// A won claim: this node may refresh `key` from `row.version` until the lease ends.
package struct FleetClaim: Sendable, Equatable {
  package var row: FleetRow
  /// The lease granted, in seconds, counted by the caller from before it asked.
  package var lease: Double

  package init(row: FleetRow, lease: Double) {
    self.row = row
    self.lease = lease
  }
}

/// What went wrong with the store; messages name the fleet, the row and what to do, never a
/// secret (no password, key or token).
package struct FleetStoreError: Error, Sendable, Equatable, CustomStringConvertible {
  package enum Code: Sendable, Equatable {
    /// The database could not be reached or the statement failed on the wire.
    case unreachable
    /// The key does not open this fleet's key check: another key wrote it.
    case keyMismatch
    /// A ciphertext did not authenticate under its row's associated data.
    case tampered
    /// The database refused (permissions, schema): an operator has to act.
    case refused
  }
  package var code: Code
  package var message: String

  package init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  package var description: String { message }
}

/// A change another broker committed, as announced by `NOTIFY` (or found by a poll).
package enum FleetChange: Sendable, Equatable {
  case row(id: String, version: Int64)
  /// The notification channel was (re)connected: anything may have changed meanwhile.
  case resubscribed
}

/// The shared store of a fleet (README "Fleet"). Every method may throw `FleetStoreError`.
/// Ciphertexts and their associated data are the store's business: callers see plaintext.
package protocol FleetStore: Sendable {
  /// The row of `key`, nil when there is none.
  func read(_ key: FleetKey) async throws -> FleetRow?
  /// Claims the refresh of `key` for `node` for `lease` seconds (the database's clock), if the
  /// row is still at `version` (nil: there is no row yet; the claim creates it) and no other
  /// node's claim is live. nil when another node holds it or the row moved on.
  func claim(_ key: FleetKey, version: Int64?, node: String, lease: Double) async throws -> FleetClaim?
  /// Writes `tokens` as version `claim.row.version + 1` if the row is still at the claim's
  /// version and epoch, records the claim's holder as the row's refresher, releases the claim
  /// and notifies the fleet. false: fenced (the claim
  /// lapsed and another node moved the row on); nothing was written.
  func commit(_ claim: FleetClaim, tokens: FleetTokens, seed: String?) async throws -> Bool
  /// Gives a claim up without writing (the refresh failed).
  func release(_ claim: FleetClaim) async throws
  /// A login on `node`: writes `tokens` under a new seed as a new version, whatever the row
  /// held, and notifies the fleet. Returns the new version.
  func seed(_ key: FleetKey, tokens: FleetTokens, seed: String, node: String) async throws -> Int64
  /// A logout on `node`: every row of `provider` loses its tokens and becomes logged out
  /// (`FleetRow.loggedOut`, written by `node`) as a new version, any claim on it is released
  /// and fenced, and the fleet is notified. Only a login (`seed`) fills a row again.
  func forget(provider: String, node: String) async throws
  /// Changes committed by any broker of this fleet, this one's included.
  var changes: AsyncStream<FleetChange> { get }
}

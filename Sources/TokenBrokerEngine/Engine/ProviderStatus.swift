import TokenBrokerCore

/// One provider's entry in `GET /v1/status`. Never holds a token or a secret.
package struct ProviderStatus: Sendable, Equatable {
  package var name: String
  package var grant: Grant
  package var state: ProviderState
  /// Seconds until the default token expires; nil without a token or expiry.
  package var expiresIn: Int?
  package var lastRefresh: Double?
  package var nextRefresh: Double?
  package var failures: Int
  package var lastError: String?
  /// Cached tokens of this provider (one per scope set in use).
  package var cachedScopeSets: Int
  /// Under `[fleet]`, for a provider it shares (README "Fleet").
  package var fleet: Fleet? = nil

  package struct Fleet: Sendable, Equatable {
    /// `refresher` when this broker refreshed the default token last, else `follower`.
    package var role: String
    /// The broker that refreshed it last, when known.
    package var holder: String?
    /// `ok` or `unreachable`.
    package var store: String
  }

  package func json(now: Double) -> [UInt8] {
    var w = JSONWriter.Object()
    w.field("name", name)
    w.field("grant", grant.rawValue)
    w.field("state", state.rawValue)
    w.field("expires_in", expiresIn)
    w.field("last_refresh", lastRefresh.map(Timestamp.rfc3339))
    w.field("next_refresh", nextRefresh.map(Timestamp.rfc3339))
    w.field("next_refresh_in", nextRefresh.map { Int(max(0, $0 - now).rounded(.up)) })
    w.field("failures", failures)
    w.field("last_error", lastError)
    w.field("scope_sets", cachedScopeSets)
    if let fleet {
      var f = JSONWriter.Object()
      f.field("role", fleet.role)
      f.field("holder", fleet.holder)
      f.field("store", fleet.store)
      w.raw("fleet", f.finished())
    }
    return w.finished()
  }
}

import TokenBrokerCore

/// One provider's entry in `GET /v1/status`. Never holds a token or a secret.
public struct ProviderStatus: Sendable, Equatable {
  public var name: String
  public var grant: Grant
  public var state: ProviderState
  /// Seconds until the default token expires; nil without a token or expiry.
  public var expiresIn: Int?
  public var lastRefresh: Double?
  public var nextRefresh: Double?
  public var failures: Int
  public var lastError: String?
  /// Cached tokens of this provider (one per scope set in use).
  public var cachedScopeSets: Int

  public func json(now: Double) -> [UInt8] {
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
    return w.finished()
  }
}

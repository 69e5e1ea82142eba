import NIOConcurrencyHelpers
import TokenBrokerCore

/// The tokens ready to serve, readable without an actor hop: the socket's
/// fast path answers a cached token with one lock and no upstream or disk work.
public final class TokenCache: Sendable {
  struct Entry {
    var token: Token
    var lastUsed: Double
  }

  private let box = NIOLockedValueBox<[String: [ScopeSet: Entry]]>([:])

  public init() {}

  /// The cached token if it has at least `minValid` seconds left; marks it used.
  public func servable(provider: String, scopes: ScopeSet, now: Double, minValid: Double) -> Token? {
    box.withLockedValue { all -> Token? in
      guard var entry = all[provider]?[scopes], entry.token.remaining(at: now) >= minValid else { return nil }
      entry.lastUsed = now
      all[provider]![scopes] = entry
      return entry.token
    }
  }

  func set(provider: String, scopes: ScopeSet, token: Token, now: Double) {
    box.withLockedValue { all in
      let used = all[provider]?[scopes]?.lastUsed ?? now
      all[provider, default: [:]][scopes] = Entry(token: token, lastUsed: used)
    }
  }

  func lastUsed(provider: String, scopes: ScopeSet) -> Double? {
    box.withLockedValue { $0[provider]?[scopes]?.lastUsed }
  }

  func remove(provider: String, scopes: ScopeSet) {
    box.withLockedValue { all in _ = all[provider]?.removeValue(forKey: scopes) }
  }

  func remove(provider: String) {
    box.withLockedValue { all in _ = all.removeValue(forKey: provider) }
  }

  /// Number of cached tokens (all providers, all scope sets).
  public var count: Int { box.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }
}

import NIOConcurrencyHelpers
import TokenBrokerCore

/// The tokens ready to serve, readable without an actor hop: the socket's
/// fast path answers a cached token with one lock and no upstream or disk work.
package final class TokenCache: Sendable {
  struct Entry {
    var answer: TokenAnswer
    var lastUsed: Double
  }

  private let box = NIOLockedValueBox<[String: [ScopeSet: Entry]]>([:])

  package init() {}

  /// The cached token, rendered, if it has at least `minValid` seconds left; marks it used.
  package func servable(provider: String, scopes: ScopeSet, now: Double, minValid: Double) -> TokenAnswer? {
    box.withLockedValue { all -> TokenAnswer? in
      // One hash per key: the entry is found once and marked in place.
      guard let p = all.index(forKey: provider), let s = all.values[p].index(forKey: scopes) else {
        return nil
      }
      let answer = all.values[p].values[s].answer
      guard RefreshPolicy.isServable(expiresAt: answer.expiresAt, now: now, minValid: minValid) else {
        return nil
      }
      all.values[p].values[s].lastUsed = now
      return answer
    }
  }

  func set(provider: ProviderConfig, scopes: ScopeSet, token: Token, now: Double) {
    let answer = TokenAnswer(token, provider: provider)
    box.withLockedValue { all in
      let used = all[provider.name]?[scopes]?.lastUsed ?? now
      all[provider.name, default: [:]][scopes] = Entry(answer: answer, lastUsed: used)
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
  package var count: Int { box.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }
}

/// When to refresh a token and how long to wait after a failure.
///
/// Pure: the caller supplies `now` and a uniform random number in `0..<1`, so
/// tests pin every decision.
package struct RefreshPolicy: Sendable, Equatable {
  package var refreshAt: Double
  package var jitter: Double
  package var minValid: Double
  /// First backoff step, seconds.
  package var backoffBase: Double = 1
  /// Backoff cap, seconds; rejected credentials retry only at this interval.
  package var backoffCap: Double = 300
  /// Never schedule closer than this, seconds: no tight loops.
  package var minimumDelay: Double = 1

  package init(refreshAt: Double, jitter: Double, minValid: Double) {
    self.refreshAt = refreshAt
    self.jitter = jitter
    self.minValid = minValid
  }

  package init(_ settings: BrokerSettings) {
    self.init(refreshAt: settings.refreshAt, jitter: settings.refreshJitter, minValid: settings.minValid)
  }

  /// The moment to refresh `token`: once `refreshAt ± jitter` of its lifetime has
  /// passed, but early enough that it is never held with less than `minValid` left.
  /// nil for tokens that never expire.
  package func nextRefresh(for token: Token, now: Double, random: Double) -> Double? {
    guard let expiresAt = token.expiresAt else { return nil }
    let lifetime = max(0, expiresAt - token.issuedAt)
    let fraction = refreshAt + jitter * (2 * random - 1)
    var at = token.issuedAt + lifetime * fraction
    // Keep a servable token in hand: refresh before it drops under min_valid.
    let servableUntil = expiresAt - minValid
    if servableUntil > token.issuedAt { at = min(at, servableUntil) }
    return max(at, now + minimumDelay)
  }

  /// Seconds to wait before retry number `attempt` (1 = after the first failure):
  /// full jitter over `base * 2^(attempt-1)` capped at `backoffCap`, never below
  /// `minimumDelay`, never earlier than the server's `Retry-After`.
  package func backoff(attempt: Int, retryAfter: Double?, random: Double) -> Double {
    let exponent = Double(max(0, min(attempt - 1, 30)))
    let ceiling = min(backoffCap, backoffBase * pow2(exponent))
    var delay = max(minimumDelay, ceiling * random)
    if let retryAfter { delay = max(delay, min(retryAfter, 3600)) }
    return delay
  }

  /// Delay after a failure of `kind`.
  package func delay(after kind: FailureKind, attempt: Int, retryAfter: Double?, random: Double) -> Double {
    switch kind {
    case .retryLater: return backoff(attempt: attempt, retryAfter: retryAfter, random: random)
    case .credentialsRejected, .configurationWrong, .refreshTokenRejected:
      return max(backoffCap, min(retryAfter ?? 0, 3600))
    }
  }

  /// Whether `token` may be served at `now` to a caller asking for `requestedMinValid` seconds.
  package func isServable(_ token: Token, now: Double, requestedMinValid: Double?) -> Bool {
    Self.isServable(token, now: now, minValid: max(minValid, requestedMinValid ?? 0))
  }

  /// The one servability rule, used by the engine, the fast-path cache and status: a token
  /// is served only with at least `minValid` seconds left.
  @inline(__always)
  package static func isServable(_ token: Token, now: Double, minValid: Double) -> Bool {
    isServable(expiresAt: token.expiresAt, now: now, minValid: minValid)
  }

  /// The same rule on a token's expiry alone (nil: it does not expire).
  package static func isServable(expiresAt: Double?, now: Double, minValid: Double) -> Bool {
    guard let expiresAt else { return true }
    return expiresAt - now >= minValid
  }

  private func pow2(_ e: Double) -> Double {
    var r = 1.0
    for _ in 0..<Int(e) { r *= 2 }
    return r
  }
}

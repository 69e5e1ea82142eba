import Testing

@testable import TokenBrokerCore

/// Just below 1: the largest draw `random` may produce in practice.
private let nearlyOne = 0.999999

private func token(issuedAt: Double, expiresAt: Double?) -> Token {
  Token(accessToken: "tok", tokenType: "Bearer", issuedAt: issuedAt, expiresAt: expiresAt, scope: [])
}

private let policy = RefreshPolicy(refreshAt: 0.8, jitter: 0.05, minValid: 30)
/// One hour, issued at 1000.
private let hour = token(issuedAt: 1000, expiresAt: 4600)

@Suite struct RefreshPolicyTests {
  @Test func defaults() {
    #expect(policy.backoffBase == 1)
    #expect(policy.backoffCap == 300)
    #expect(policy.minimumDelay == 1)
    let fromSettings = RefreshPolicy(BrokerSettings())
    #expect(fromSettings.refreshAt == 0.8)
    #expect(fromSettings.jitter == 0.05)
    #expect(fromSettings.minValid == 30)
  }

  // MARK: nextRefresh

  @Test func middleDrawRefreshesAtExactlyRefreshAt() {
    #expect(policy.nextRefresh(for: hour, now: 1000, random: 0.5) == 1000 + 3600 * 0.8)
    #expect(policy.nextRefresh(for: hour, now: 1000, random: 0.5) == 3880)
  }

  @Test func withoutJitterTheDrawDoesNotMatter() {
    let plain = RefreshPolicy(refreshAt: 0.5, jitter: 0, minValid: 30)
    for r in [0, 0.25, 0.5, nearlyOne] {
      #expect(plain.nextRefresh(for: hour, now: 1000, random: r) == 2800)
    }
  }

  @Test func lowestDrawRefreshesJitterEarlier() {
    #expect(policy.nextRefresh(for: hour, now: 1000, random: 0) == 1000 + 3600 * 0.75)
  }

  @Test func highestDrawRefreshesJitterLater() throws {
    let at = try #require(policy.nextRefresh(for: hour, now: 1000, random: nearlyOne))
    #expect(abs(at - (1000 + 3600 * 0.85)) < 0.01)
    #expect(at < 1000 + 3600 * 0.85)
  }

  @Test func jitterIsProportionalToTheDraw() throws {
    let at = try #require(policy.nextRefresh(for: hour, now: 1000, random: 0.75))
    #expect(abs(at - (1000 + 3600 * 0.825)) < 1e-6)
  }

  @Test func neverLaterThanExpiryMinusMinValid() {
    // 60 s token: 80 % would be 48 s, leaving only 12 s < min_valid 30.
    let short = token(issuedAt: 1000, expiresAt: 1060)
    #expect(policy.nextRefresh(for: short, now: 1000, random: 0.5) == 1030)
    #expect(policy.nextRefresh(for: short, now: 1000, random: nearlyOne) == 1030)
    #expect(policy.nextRefresh(for: short, now: 1000, random: 0) == 1030)
  }

  @Test func demoTokenOf30SecondsWithMinValid10() {
    let p = RefreshPolicy(refreshAt: 0.8, jitter: 0, minValid: 10)
    #expect(p.nextRefresh(for: token(issuedAt: 0, expiresAt: 30), now: 0, random: 0.5) == 20)
  }

  @Test func tokenShorterThanMinValidStillWaitsForItsFraction() {
    // A 20 s token can never be held with 30 s left; refresh at 80 %, not in a loop.
    let tiny = token(issuedAt: 1000, expiresAt: 1020)
    #expect(policy.nextRefresh(for: tiny, now: 1000, random: 0.5) == 1016)
  }

  @Test func neverEarlierThanNowPlusMinimumDelay() {
    #expect(policy.nextRefresh(for: hour, now: 3900, random: 0.5) == 3901)
    // Already expired.
    #expect(policy.nextRefresh(for: hour, now: 9000, random: 0.5) == 9001)
  }

  @Test func nilForTokensWithoutExpiry() {
    #expect(policy.nextRefresh(for: token(issuedAt: 1000, expiresAt: nil), now: 1000, random: 0.5) == nil)
  }

  // MARK: backoff

  @Test func backoffDoublesUpToTheCap() {
    let expected: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    for (i, ceiling) in expected.enumerated() {
      let delay = policy.backoff(attempt: i + 1, retryAfter: nil, random: nearlyOne)
      #expect(abs(delay - ceiling) < 0.001, "attempt \(i + 1): \(delay)")
      #expect(delay <= ceiling)
    }
  }

  @Test func backoffStaysAtTheCapForHugeAttempts() {
    for attempt in [31, 64, 1000, Int.max] {
      let delay = policy.backoff(attempt: attempt, retryAfter: nil, random: nearlyOne)
      #expect(abs(delay - 300) < 0.001)
    }
  }

  @Test func backoffAttemptZeroOrNegativeIsTheFirstStep() {
    #expect(policy.backoff(attempt: 0, retryAfter: nil, random: 0.5) == 1)
    #expect(policy.backoff(attempt: -5, retryAfter: nil, random: nearlyOne) == 1)
  }

  @Test func lowestDrawGivesMinimumDelay() {
    for attempt in [1, 2, 5, 10, 50] {
      #expect(policy.backoff(attempt: attempt, retryAfter: nil, random: 0) == 1)
    }
  }

  @Test func fullJitterScalesTheCeiling() {
    #expect(policy.backoff(attempt: 4, retryAfter: nil, random: 0.5) == 4)
    #expect(policy.backoff(attempt: 10, retryAfter: nil, random: 0.5) == 150)
  }

  @Test func retryAfterWinsWhenLarger() {
    #expect(policy.backoff(attempt: 1, retryAfter: 120, random: 0.5) == 120)
    #expect(policy.backoff(attempt: 12, retryAfter: 1000, random: nearlyOne) == 1000)
  }

  @Test func backoffWinsWhenRetryAfterIsSmaller() {
    let delay = policy.backoff(attempt: 5, retryAfter: 2, random: nearlyOne)
    #expect(abs(delay - 16) < 0.001)
    #expect(policy.backoff(attempt: 1, retryAfter: 0, random: 0) == 1)
  }

  @Test func retryAfterIsBoundedToAnHour() {
    #expect(policy.backoff(attempt: 1, retryAfter: 1_000_000, random: 0) == 3600)
  }

  // MARK: delay(after:)

  @Test func rejectedCredentialsRetryOnlyAtTheCap() {
    for attempt in [1, 2, 3, 100] {
      for r in [0, 0.5, nearlyOne] {
        #expect(
          policy.delay(after: .credentialsRejected, attempt: attempt, retryAfter: nil, random: r) == 300)
      }
    }
    #expect(
      policy.delay(after: .credentialsRejected, attempt: 1, retryAfter: nil, random: 0) == policy.backoffCap)
  }

  @Test func wrongConfigurationRetriesOnlyAtTheCap() {
    #expect(policy.delay(after: .configurationWrong, attempt: 1, retryAfter: nil, random: 0) == 300)
  }

  @Test func rejectionHonoursALongerRetryAfter() {
    #expect(policy.delay(after: .credentialsRejected, attempt: 1, retryAfter: 900, random: 0) == 900)
    #expect(policy.delay(after: .credentialsRejected, attempt: 1, retryAfter: 10, random: 0) == 300)
  }

  /// Found by fuzzing: an `Int.max` Retry-After on a 401 reached the timer arithmetic.
  @Test func rejectionRetryAfterIsBoundedToAnHour() {
    for kind in [FailureKind.credentialsRejected, .configurationWrong, .refreshTokenRejected] {
      #expect(policy.delay(after: kind, attempt: 1, retryAfter: 9.2e18, random: 0) == 3600)
    }
  }

  @Test func transientFailuresBackOff() {
    #expect(policy.delay(after: .retryLater, attempt: 1, retryAfter: nil, random: 0) == 1)
    #expect(policy.delay(after: .retryLater, attempt: 4, retryAfter: nil, random: 0.5) == 4)
    #expect(policy.delay(after: .retryLater, attempt: 1, retryAfter: 42, random: 0.5) == 42)
  }

  @Test func customCapApplies() {
    var p = policy
    p.backoffCap = 60
    #expect(p.delay(after: .credentialsRejected, attempt: 1, retryAfter: nil, random: 0) == 60)
    #expect(abs(p.backoff(attempt: 20, retryAfter: nil, random: nearlyOne) - 60) < 0.001)
  }

  // MARK: isServable

  @Test func servableWithAtLeastMinValidLeft() {
    let t = token(issuedAt: 0, expiresAt: 1000)
    #expect(policy.isServable(t, now: 900, requestedMinValid: nil))
    #expect(policy.isServable(t, now: 970, requestedMinValid: nil))
    #expect(!policy.isServable(t, now: 971, requestedMinValid: nil))
    #expect(!policy.isServable(t, now: 1000, requestedMinValid: nil))
    #expect(!policy.isServable(t, now: 2000, requestedMinValid: nil))
  }

  @Test func requestedMinValidRaisesTheBar() {
    let t = token(issuedAt: 0, expiresAt: 1000)
    #expect(!policy.isServable(t, now: 900, requestedMinValid: 120))
    #expect(policy.isServable(t, now: 880, requestedMinValid: 120))
  }

  @Test func requestedMinValidNeverLowersTheBar() {
    let t = token(issuedAt: 0, expiresAt: 1000)
    #expect(!policy.isServable(t, now: 980, requestedMinValid: 5))
    #expect(!policy.isServable(t, now: 980, requestedMinValid: 0))
  }

  @Test func keysWithoutExpiryAreAlwaysServable() {
    let key = token(issuedAt: 0, expiresAt: nil)
    #expect(policy.isServable(key, now: 1e12, requestedMinValid: 1e9))
  }
}

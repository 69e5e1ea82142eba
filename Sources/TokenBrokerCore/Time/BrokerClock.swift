/// A scheduled action that can be cancelled.
package protocol TimerHandle: Sendable {
  func cancel()
}

/// Every clock and timer of the broker goes through this, so tests run on a
/// manual clock and production on Dispatch timers.
package protocol BrokerClock: Sendable {
  /// Seconds since the Unix epoch.
  func now() -> Double
  /// Runs `action` once `now() >= deadline`. Production clocks run it in a new
  /// task; a manual clock awaits it, so a test that advances time also sees
  /// the refresh that time triggered.
  func schedule(at deadline: Double, _ action: @escaping @Sendable () async -> Void) -> any TimerHandle
}

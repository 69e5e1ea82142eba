/// A scheduled action that can be cancelled.
public protocol TimerHandle: Sendable {
  func cancel()
}

/// Every clock and timer of the broker goes through this, so tests run on a
/// manual clock and production on Dispatch timers.
public protocol BrokerClock: Sendable {
  /// Seconds since the Unix epoch.
  func now() -> Double
  /// Runs `action` once `now() >= deadline`.
  func schedule(at deadline: Double, _ action: @escaping @Sendable () -> Void) -> any TimerHandle
}

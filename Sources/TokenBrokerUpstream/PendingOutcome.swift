import NIOCore

/// The one outcome of a connection handler's work (the proxy's tunnel, the exchange): the
/// promise `start` hands over, completed exactly once, and the first failure caught before
/// `start`, which `start` then gets instead of a bare "closed" (a TLS handshake can fail while
/// the connection is still being handed over). It never completes a promise itself: that runs
/// callbacks which may call back into the handler (closing the channel removes it), so each
/// method hands the caller what to complete, after this value's access has ended.
struct PendingOutcome<Value: Sendable> {
  private var promise: EventLoopPromise<Value>?
  private var started = false
  private var early: (any Error)?

  /// Whether a promise waits for the outcome.
  var isPending: Bool { promise != nil }

  /// Takes `promise` when the connection is `open` and nothing failed before (nil), or says
  /// what to fail it with at once: the failure caught before, or `closed`.
  mutating func start(
    _ promise: EventLoopPromise<Value>, open: Bool, closed: @autoclosure () -> any Error
  ) -> (any Error)? {
    started = true
    guard early == nil, open else { return early ?? closed() }
    self.promise = promise
    return nil
  }

  /// A failure from `errorCaught`, kept for `start` when it comes first; the waiting promise
  /// to fail with it.
  mutating func caught(_ error: any Error) -> EventLoopPromise<Value>? {
    if !started, early == nil { early = error }
    return take()
  }

  /// The waiting promise, no longer pending, to complete now.
  mutating func take() -> EventLoopPromise<Value>? {
    defer { promise = nil }
    return promise
  }
}

import NIOConcurrencyHelpers

/// A stop asked for by a signal, remembered until there is something to stop: a SIGTERM
/// that arrives while the daemon is still starting is acted on as soon as the service
/// group exists, never lost.
final class StopLatch: Sendable {
  private struct State {
    var requested = false
    var action: (@Sendable () async -> Void)?
  }
  private let state = NIOLockedValueBox(State())

  /// A signal asked to stop: runs the action now, or once it is set.
  func request() {
    let action = state.withLockedValue { s -> (@Sendable () async -> Void)? in
      s.requested = true
      return s.action
    }
    if let action { Task { await action() } }
  }

  /// What a stop does; run at once when one was already asked for.
  func onRequest(_ action: @escaping @Sendable () async -> Void) async {
    let requested = state.withLockedValue { s -> Bool in
      s.action = action
      return s.requested
    }
    if requested { await action() }
  }
}

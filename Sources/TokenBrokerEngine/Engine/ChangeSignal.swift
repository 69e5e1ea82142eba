/// "Some provider's state changed": engines raise it after every refresh outcome, and
/// the one consumer (the systemd status line) recomputes then, instead of polling.
/// Signals raised while the consumer is busy coalesce into one.
package final class ChangeSignal: Sendable {
  package let changes: AsyncStream<Void>
  private let continuation: AsyncStream<Void>.Continuation

  package init() {
    (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  package func raise() {
    continuation.yield()
  }

  deinit {
    continuation.finish()
  }
}

import NIOConcurrencyHelpers

/// Runs `operation` and returns its result, or nil when `seconds` pass first.
///
/// Unlike a task group, this really returns at the deadline: the operation is then cancelled
/// and left to finish on its own, and nothing waits for it (an engine that never answers
/// cannot hold up start-up, the watchdog or a stop).
package func withDeadline<T: Sendable>(
  seconds: Double, _ operation: @escaping @Sendable () async -> T
) async -> T? {
  let race = DeadlineRace<T>()
  return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
    race.arm(continuation)
    let work = Task {
      let value = await operation()
      race.finish(value)
    }
    let timer = Task {
      do { try await Task.sleep(for: .milliseconds(Int64(max(0, seconds) * 1000))) } catch { return }
      if race.finish(nil) { work.cancel() }
    }
    race.onFinish { timer.cancel() }
  }
}

/// The first of the operation and the timer to finish resumes the continuation.
private final class DeadlineRace<T: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<T?, Never>?
    var cleanup: (@Sendable () -> Void)?
    var done = false
  }
  private let state = NIOLockedValueBox(State())

  func arm(_ continuation: CheckedContinuation<T?, Never>) {
    state.withLockedValue { $0.continuation = continuation }
  }

  /// Runs `cleanup` once the race is decided (at once when it already is).
  func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
    let runNow = state.withLockedValue { s -> Bool in
      if s.done { return true }
      s.cleanup = cleanup
      return false
    }
    if runNow { cleanup() }
  }

  /// True when this call decided the race.
  @discardableResult
  func finish(_ value: T?) -> Bool {
    let (continuation, cleanup) = state.withLockedValue {
      s -> (CheckedContinuation<T?, Never>?, (@Sendable () -> Void)?) in
      guard !s.done else { return (nil, nil) }
      s.done = true
      defer {
        s.continuation = nil
        s.cleanup = nil
      }
      return (s.continuation, s.cleanup)
    }
    guard let continuation else { return false }
    continuation.resume(returning: value)
    cleanup?()
    return true
  }
}

/// Runs bodies one at a time, in the order they arrive (reloads from SIGHUP and from
/// `POST /v1/reload` must never interleave).
package actor SerialGate {
  private var busy = false
  private var waiters: [CheckedContinuation<Void, Never>] = []

  package init() {}

  package func run<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
    if busy {
      await withCheckedContinuation { waiters.append($0) }
    } else {
      busy = true
    }
    let result = await body()
    if waiters.isEmpty {
      busy = false
    } else {
      waiters.removeFirst().resume()
    }
    return result
  }
}

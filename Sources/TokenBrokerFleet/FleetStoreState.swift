import Synchronization
import TokenBrokerEngine

/// How the store's database looks from this broker, readable at any time without waiting.
package struct FleetStoreHealth: Sendable, Equatable {
  package enum State: String, Sendable, Equatable {
    /// `run()` has not yet prepared the tables and checked the key.
    case starting
    /// The last statement or (re)connection succeeded.
    case ok
    /// The database could not be reached; the store keeps retrying.
    case unreachable
    /// Start-up was refused (`.keyMismatch`, `.refused`): an operator has to act; `run()` ended.
    case failed
  }

  package var state: State
  /// The last error's message (kept after a recovery), nil when there was none.
  package var lastError: String?

  package init(state: State, lastError: String?) {
    self.state = state
    self.lastError = lastError
  }
}

/// The store's mutable state under one lock: health, the start-up outcome and whoever waits for it.
struct FleetStoreState {
  enum Phase {
    case idle
    /// `run()` is preparing; the last attempt's error, if one failed already.
    case starting(lastFailure: FleetStoreError?)
    /// Tables ready and key checked; whether a LISTEN is live.
    case started(listening: Bool)
    case failed(FleetStoreError)
    case stopped
  }

  /// What a waiter waits for.
  enum Goal {
    /// The tables and the key (statements may run).
    case started
    /// That, and a live LISTEN (a change committed from now on is seen).
    case listening
  }

  var phase = Phase.idle
  var health = FleetStoreHealth(state: .starting, lastError: nil)
  /// The listener's last connection error, for an answer that timed out.
  var lastConnectError: String?
  var waiters: [Int: (goal: Goal, continuation: CheckedContinuation<Void, any Error>)] = [:]
  var nextWaiter = 0
  var nextConnectionID = 0

  /// nil: not yet; otherwise how waiting for `goal` ends now.
  func outcome(_ goal: Goal) -> Result<Void, FleetStoreError>? {
    switch phase {
    case .idle, .starting: return nil
    case .started(let listening): return goal == .started || listening ? .success(()) : nil
    case .failed(let e): return .failure(e)
    case .stopped: return .failure(FleetStoreError(.unreachable, "the fleet store has stopped"))
    }
  }

  /// Takes out the waiters whose wait is over, with how it ended.
  mutating func settledWaiters() -> [(CheckedContinuation<Void, any Error>, Result<Void, FleetStoreError>)] {
    var done: [(CheckedContinuation<Void, any Error>, Result<Void, FleetStoreError>)] = []
    for (id, w) in waiters {
      if let result = outcome(w.goal) {
        done.append((w.continuation, result))
        waiters[id] = nil
      }
    }
    return done
  }
}

extension Mutex where Value == FleetStoreState {
  /// Changes the state, then resumes (outside the lock) whoever's wait it ended.
  func update(_ change: (inout FleetStoreState) -> Void) {
    let done = withLock { s in
      change(&s)
      return s.settledWaiters()
    }
    for (c, result) in done { c.resume(with: result.mapError { $0 as any Error }) }
  }

  /// Waits until `goal` holds or start-up failed for good; cancellable.
  func wait(for goal: FleetStoreState.Goal) async throws {
    let id = withLock { s in
      s.nextWaiter += 1
      return s.nextWaiter
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        let now: Result<Void, FleetStoreError>? = withLock { s in
          if let r = s.outcome(goal) { return r }
          if Task.isCancelled { return .failure(FleetStoreError(.unreachable, "cancelled")) }
          s.waiters[id] = (goal, c)
          return nil
        }
        if let now { c.resume(with: now.mapError { $0 as any Error }) }
      }
    } onCancel: {
      let w = withLock { $0.waiters.removeValue(forKey: id) }
      w?.continuation.resume(throwing: CancellationError())
    }
  }
}

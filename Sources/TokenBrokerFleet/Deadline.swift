import Synchronization

/// What `withDeadline` throws when the work did not finish in time.
struct DeadlineExceeded: Error {}

/// Runs `body` in a task of its own and returns its result, or throws `DeadlineExceeded` after
/// `limit` (cancelling the task, which may finish later on its own: a statement already sent
/// cannot be waited for by a caller that must not hang on a silent network). Cancelling the
/// caller cancels the task.
func withDeadline<T: Sendable>(
  _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  let race = DeadlineRace<T>()
  return try await withTaskCancellationHandler {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
      race.slot.withLock { $0 = c }
      let work = Task {
        do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
      }
      let timer = Task {
        do {
          try await Task.sleep(for: limit)
          race.finish(.failure(DeadlineExceeded()))
        } catch {}
      }
      race.tasks.withLock { $0 = (work, timer) }
      // finish may have run before the tasks were recorded: cancel what it could not.
      if race.slot.withLock({ $0 == nil }) {
        timer.cancel()
        work.cancel()
      } else if Task.isCancelled {
        race.finish(.failure(CancellationError()))
      }
    }
  } onCancel: {
    race.finish(.failure(CancellationError()))
  }
}

/// The continuation that the work, the timer or a cancellation resumes, whichever comes first.
private final class DeadlineRace<T: Sendable>: Sendable {
  let slot = Mutex<CheckedContinuation<T, any Error>?>(nil)
  let tasks = Mutex<(work: Task<Void, Never>?, timer: Task<Void, Never>?)>((nil, nil))

  func finish(_ result: Result<T, any Error>) {
    let taken = slot.withLock { s in
      defer { s = nil }
      return s
    }
    guard let taken else { return }
    let (work, timer) = tasks.withLock { $0 }
    timer?.cancel()
    if case .failure = result { work?.cancel() }
    taken.resume(with: result)
  }
}

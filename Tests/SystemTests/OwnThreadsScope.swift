import Foundation
import Glibc
import Testing

/// Runs every test of the suite on threads of its own instead of the cooperative pool. These
/// tests block while they wait for processes (`dpkg -i`, `systemctl`, `journalctl` in a
/// container); on the cooperative pool (ncpu threads, two here) that stalls every other
/// suite of the process, whose brokers then miss their deadlines.
struct OwnThreadsScope: SuiteTrait, TestScoping {
  var isRecursive: Bool { false }

  func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    try await withTaskExecutorPreference(BlockingTestExecutor.shared) { try await function() }
  }
}

/// A `TaskExecutor` of a few threads that may block: jobs run in the order they came, on the
/// first free thread.
final class BlockingTestExecutor: TaskExecutor, @unchecked Sendable {
  static let shared = BlockingTestExecutor(threads: 4)

  private let condition = NSCondition()
  private var jobs: [UnownedJob] = []
  private var threads: [pthread_t] = []

  init(threads: Int) {
    for _ in 0..<threads {
      Thread { [self] in run() }.start()
    }
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    condition.lock()
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }

  /// Whether the calling thread is one of this executor's.
  var runsTheCaller: Bool {
    let me = pthread_self()
    condition.lock()
    defer { condition.unlock() }
    return threads.contains { pthread_equal($0, me) != 0 }
  }

  private func run() {
    condition.lock()
    threads.append(pthread_self())
    condition.unlock()
    while true {
      condition.lock()
      while jobs.isEmpty { condition.wait() }
      let job = jobs.removeFirst()
      condition.unlock()
      job.runSynchronously(on: asUnownedTaskExecutor())
    }
  }
}

extension SystemSuite {
  @Suite("Own threads") struct OwnThreadsTests {
    /// A system test that blocks (waiting for a process) does not block the cooperative pool.
    @Test func aSystemTestRunsOnThreadsOfItsOwn() async {
      #expect(BlockingTestExecutor.shared.runsTheCaller)
      await Task.yield()  // and after a suspension
      #expect(BlockingTestExecutor.shared.runsTheCaller)
    }
  }
}

import Foundation
import Glibc
import TokenBrokerTestSupport

/// A `TaskExecutor` on threads of its own: jobs run in the order they came, on the first free
/// thread. Each thread first runs `prepare` (setns(2) into a network namespace changes only
/// the calling thread's); a thread whose `prepare` failed runs nothing, and the executor's
/// creation throws that failure.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
  /// Where every system test runs (`OwnThreadsScope`): they block while they wait for
  /// processes, which on the cooperative pool would stall every other suite.
  static let systemTests = try! ThreadExecutor(threads: 4)

  private let condition = NSCondition()
  private var jobs: [UnownedJob] = []
  private var stopped = false
  private var threads: [pthread_t] = []
  private var started = 0
  private var failure: SetupError?

  init(threads count: Int, prepare: @escaping @Sendable () throws(SetupError) -> Void = {}) throws(SetupError)
  {
    for _ in 0..<count {
      Thread { [self] in run(prepare) }.start()
    }
    condition.lock()
    while started < count { condition.wait() }
    let failure = self.failure
    condition.unlock()
    if let failure {
      stop()
      throw failure
    }
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    condition.lock()
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }

  /// Ends the threads once the jobs queued so far have run.
  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
  }

  /// Whether the calling thread is one of this executor's.
  var runsTheCaller: Bool {
    let me = pthread_self()
    condition.lock()
    defer { condition.unlock() }
    return threads.contains { pthread_equal($0, me) != 0 }
  }

  private func run(_ prepare: @Sendable () throws(SetupError) -> Void) {
    let prepared = Result { () throws(SetupError) -> Void in try prepare() }
    condition.lock()
    started += 1
    threads.append(pthread_self())
    if case .failure(let error) = prepared, failure == nil { failure = error }
    condition.broadcast()
    condition.unlock()
    guard case .success = prepared else { return }
    while true {
      condition.lock()
      while jobs.isEmpty && !stopped { condition.wait() }
      if jobs.isEmpty {
        condition.unlock()
        return
      }
      let job = jobs.removeFirst()
      condition.unlock()
      job.runSynchronously(on: asUnownedTaskExecutor())
    }
  }
}

extension ThreadExecutor {
  /// One thread in the network namespace at `path` (`/proc/PID/ns/net`): sockets created by
  /// jobs run on it belong to that namespace.
  static func inNetworkNamespace(_ path: String) throws(SetupError) -> ThreadExecutor {
    try ThreadExecutor(threads: 1) { () throws(SetupError) in
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { throw SetupError.errno("open \(path)") }
      defer { close(fd) }
      guard let setns = Self.setns, setns(fd, Self.cloneNewNet) == 0 else {
        throw SetupError.errno("setns \(path)")
      }
    }
  }

  private static let cloneNewNet: Int32 = 0x4000_0000
  /// glibc's `setns`, which the Glibc module does not declare (it needs `_GNU_SOURCE`).
  private typealias SetNS = @convention(c) (Int32, Int32) -> Int32
  private static let setns: SetNS? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return nil }
    return unsafeBitCast(symbol, to: SetNS.self)
  }()
}

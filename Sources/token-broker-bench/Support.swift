import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Wall time of one whole process, spawn to reaped exit, stdout and stderr to /dev/null.
func wallTime(_ argv: [String], environment: [String: String]) throws -> (seconds: Double, status: Int32) {
  let start = monotonic()
  let child = try ChildProcess.start(argv, environment: environment)
  let status = child.wait()
  return (monotonic() - start, status)
}

/// Runs `body(0..<count)` on `count` threads of their own at once (blocking I/O: a
/// concurrentPerform would run only as many as there are cores) and waits for all.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for i in 0..<count {
    group.enter()
    Thread {
      body(i)
      group.leave()
    }.start()
  }
  group.wait()
}

/// Progress notes go to stderr; stdout holds only the tables.
func note(_ text: String) {
  FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
}

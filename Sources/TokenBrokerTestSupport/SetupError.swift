import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Failures of the test, bench and reliability machinery itself (a child that would not
/// start, a socket that would not bind, a condition that never came): not of the code
/// under test.
package struct SetupError: Error, CustomStringConvertible {
  package let description: String
  package init(_ description: String) { self.description = description }

  /// `what: strerror(errno)`, for a system call that just failed.
  package static func errno(_ what: String) -> SetupError {
    SetupError("\(what): \(String(cString: strerror(Glibc.errno)))")
  }
}

/// Seconds on CLOCK_MONOTONIC.
package func monotonic() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Polls `condition` every `interval` seconds until it holds or `seconds` pass (a bound
/// against hanging, not a timing assertion); throws ``SetupError`` then.
package func poll(
  _ what: String, within seconds: Double = 20, every interval: Double = 0.02, _ condition: () throws -> Bool
) throws {
  let deadline = monotonic() + seconds
  while true {
    if try condition() { return }
    guard monotonic() < deadline else { throw SetupError("timed out waiting for \(what)") }
    usleep(useconds_t(interval * 1_000_000))
  }
}

/// `poll` for async tests: awaits `condition` every `interval` seconds until it holds or
/// `seconds` pass (a bound against hanging, not a timing assertion); throws ``SetupError`` then.
/// The waits are `Task.sleep`, so the cooperative pool stays free for the code under test.
package func until(
  _ what: String, within seconds: Double = 60, every interval: Double = 0.02,
  _ condition: () async throws -> Bool
) async throws {
  let deadline = monotonic() + seconds
  while true {
    if try await condition() { return }
    guard monotonic() < deadline else { throw SetupError("timed out waiting for \(what)") }
    try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
  }
}

/// Runs blocking work (sockets, child processes, journalctl) on a thread of its own, off the
/// cooperative pool (ncpu threads: blocking it would starve a broker or fake upstream that
/// runs in the same process).
@discardableResult
package func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread { continuation.resume(with: Result { try body() }) }.start()
  }
}

/// Yields to other tasks until `condition` holds, at most `attempts` times (a bound against
/// hanging, not a timing assertion); returns whether it held. For work another task of this
/// process finishes (an announcement handled, a follower updated), without sleeping.
@discardableResult
package func yieldUntil(attempts: Int = 100_000, _ condition: () async throws -> Bool) async rethrows -> Bool
{
  for _ in 0..<attempts {
    if try await condition() { return true }
    await Task.yield()
  }
  return try await condition()
}

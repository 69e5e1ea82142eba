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
    try await withTaskExecutorPreference(ThreadExecutor.systemTests) { try await function() }
  }
}

extension SystemSuite {
  @Suite("Own threads") struct OwnThreadsTests {
    /// A system test that blocks (waiting for a process) does not block the cooperative pool.
    @Test func aSystemTestRunsOnThreadsOfItsOwn() async {
      #expect(ThreadExecutor.systemTests.runsTheCaller)
      await Task.yield()  // and after a suspension
      #expect(ThreadExecutor.systemTests.runsTheCaller)
    }
  }
}

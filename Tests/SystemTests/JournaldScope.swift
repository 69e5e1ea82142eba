import Testing
import TokenBrokerTestSupport

/// Stops, when the suite ends, a journald that one of its tests started (see
/// `JournaldFixture`).
struct JournaldScope: SuiteTrait, TestScoping {
  var isRecursive: Bool { false }

  func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    defer { JournaldFixture.stopIfStarted() }
    try await function()
  }
}

import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// `token-brokerd` exits only 0, 78 or 1 (README "token-brokerd"): a bad flag is a configuration
  /// error (78, which the unit's `RestartPreventExitStatus=` stops on), never EX_USAGE's 64.
  @Suite("Exit status") struct ExitStatusTests {
    @Test(arguments: [
      ["--log-level", "bogus"], ["--log-target", "somewhere"], ["--no-such-flag"],
      ["--dev", "--check-config"],
      ["--startup-timeout", "0"], ["--startup-timeout", "soon"],
    ])
    func badFlagsExit78WithTheUsage(arguments: [String]) throws {
      let dir = try TempDirectory("tbst")
      let config = try dir.write("broker.toml", "")
      let result = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--config", config] + arguments)
      #expect(result.status == 78, "stderr: \(result.stderr)")
      #expect(result.stderr.contains("Error: "), "\(result.stderr)")
      #expect(result.stderr.contains("Usage: token-brokerd"), "\(result.stderr)")
      #expect(result.stdout.isEmpty)
    }

    @Test func helpAndVersionStillExit0() throws {
      let help = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--help"])
      #expect(help.status == 0)
      #expect(help.stdout.contains("--check-config"))
      let version = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--version"])
      #expect(version.status == 0)
      #expect(!version.stdout.isEmpty)
    }

    @Test func logLevelMessageNamesTheChoices() throws {
      let result = try runToEnd(
        try BuiltBinaries.tokenBrokerd, ["--check-config", "--log-level", "bogus"])
      #expect(result.status == 78)
      #expect(result.stderr.contains("--log-level must be one of trace, debug, info, notice, warning, error"))
    }
  }
}

import Testing
import TokenBrokerCore
import TokenBrokerDaemon

/// token-brokerd's command line (README "token-brokerd").
@Suite struct DaemonOptionsTests {
  static func options(_ arguments: [String]) throws -> DaemonOptions {
    guard case .success(.run(let options)) = DaemonOptions.parse(arguments) else {
      throw UsageProblem(arguments: arguments)
    }
    return options
  }

  struct UsageProblem: Error { var arguments: [String] }

  static func usageError(_ arguments: [String]) -> String? {
    if case .failure(let error) = DaemonOptions.parse(arguments) { return error.message }
    return nil
  }

  @Test func noArgumentsRunsOnTheInstalledConfiguration() throws {
    let o = try Self.options([])
    #expect(o.config == "/etc/token-broker/broker.toml")
    #expect(!o.dev && !o.checkConfig)
    #expect(o.socket == nil && o.logLevel == nil && o.logTarget == nil)
    #expect(o.startupTimeout == 10)
  }

  @Test func everyOptionInBothSpellings() throws {
    let spaced = try Self.options([
      "--config", "/x.toml", "--check-config", "--socket", "/s", "--log-level", "debug", "--log-target",
      "console", "--startup-timeout", "2.5",
    ])
    let joined = try Self.options([
      "--config=/x.toml", "--check-config", "--socket=/s", "--log-level=debug", "--log-target=console",
      "--startup-timeout=2.5",
    ])
    #expect(spaced == joined)
    #expect(spaced.config == "/x.toml" && spaced.checkConfig && spaced.socket == "/s")
    #expect(spaced.logLevel == .debug && spaced.logTarget == .console && spaced.startupTimeout == 2.5)
    #expect(try Self.options(["--dev"]).dev)
  }

  @Test func helpAndVersionWinOverEverythingElse() {
    #expect(DaemonOptions.parse(["--config", "/x", "--help"]) == .success(.help))
    #expect(DaemonOptions.parse(["-h"]) == .success(.help))
    #expect(DaemonOptions.parse(["--version", "--bogus"]) == .success(.version))
    for option in [
      "--config", "--check-config", "--dev", "--socket", "--log-level", "--log-target", "--startup-timeout",
    ] {
      #expect(DaemonOptions.help.contains("  \(option)"), "\(option)")
    }
  }

  @Test(arguments: [
    (["--no-such-flag"], "Unknown option '--no-such-flag'"),
    (["stray"], "Unexpected argument 'stray'"),
    (["--config"], "Missing value for '--config <config>'"),
    (["--socket", "--dev"], "Missing value for '--socket <socket>'"),
    (["--log-level", "bogus"], "--log-level must be one of trace, debug, info, notice, warning, error"),
    (["--log-target", "somewhere"], "--log-target must be one of auto, journal, console"),
    (["--startup-timeout", "0"], "--startup-timeout must be more than 0 and at most 3600 seconds"),
    (["--startup-timeout", "soon"], "--startup-timeout must be more than 0 and at most 3600 seconds"),
    (["--dev", "--check-config"], "--dev and --check-config do not go together"),
    (["--dev=yes"], "--dev takes no value"),
    (["eyJhbGciOiJIUzI1NiJ9.aB3dE5"], "Unexpected argument of 27 characters"),
    (["--Xk29Lm4Qp7Rt2=v"], "Unknown option of 15 characters"),
  ])
  func aUsageErrorSaysWhatIsWrong(arguments: [String], message: String) {
    #expect(Self.usageError(arguments) == message)
  }

  @Test func aUsageErrorPrintsTheUsageLine() {
    guard case .failure(let error) = DaemonOptions.parse(["--bogus"]) else {
      Issue.record("--bogus was accepted")
      return
    }
    #expect(
      error.description.hasPrefix("Error: Unknown option '--bogus'\nUsage: token-brokerd [--config <config>]")
    )
  }
}

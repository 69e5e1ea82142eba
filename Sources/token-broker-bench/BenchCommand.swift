import ArgumentParser
import Foundation
import TokenBrokerTestSupport

@main
struct TokenBrokerBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token-broker-bench",
    abstract:
      "Performance benchmarks of token-brokerd: each figure with its goal, PASS/FAIL, and the command "
      + "that reproduces it.",
    discussion: """
      Runs the token-brokerd and tokenctl built next to this binary (a release build:
      swift build -c release --product token-brokerd / tokenctl / token-broker-bench).
      Progress goes to stderr, the tables (markdown) to stdout.
      """,
    subcommands: [
      All.self, Serve.self, Oneshot.self, Tokenctl.self, SingleFlight.self, Scale.self, Economy.self,
      Fleet.self, Instructions.self, OrderFile.self,
    ])
}

/// Options every subcommand takes.
struct CommonOptions: ParsableArguments {
  @Flag(help: "Small sizes and short durations (the whole of `all` in under 2 minutes).")
  var quick = false

  @Option(
    help: ArgumentHelp(
      "The load generator: a udsload.c to compile, or a built udsload.", valueName: "PATH"))
  var udsload: String?
}

/// Runs benchmarks in order; a benchmark that cannot run becomes an ERROR row, the rest go on.
func runBenchmarks(
  _ common: CommonOptions, _ list: [(title: String, run: (BenchEnvironment) async throws -> BenchTable)]
) async throws {
  let bench = try BenchEnvironment(udsload: common.udsload)
  let report = Report()
  let started = monotonic()
  note("binaries in \(bench.binDirectory); \(ProcessInfo.processInfo.activeProcessorCount) cores")
  for item in list {
    do {
      report.add(try await item.run(bench))
    } catch {
      var t = BenchTable(item.title)
      t.add(Figure("benchmark could not run", "\(error)", goal: "—", .error, command: ""))
      report.add(t)
    }
  }
  report.printReproduceLines()
  note("done in \(Format.seconds(monotonic() - started))")
  if report.hadErrors { throw ExitCode.failure }
}

/// `--tokens` names only tokens the serving benches set up.
func validateTokens(_ tokens: String?) throws {
  if let t = tokens, parseList(t).contains(where: { !ServingSetup.tokens.contains($0) }) {
    throw ValidationError("--tokens takes apikey and/or oauth")
  }
}

func parseList(_ text: String) -> [String] {
  text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

extension TokenBrokerBench {
  struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Every benchmark in turn (about 15 minutes at full size; --quick under 2).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Seconds of the scale benchmark's idle window (default 60; 5 with --quick).")
    var idle: Double?
    @Option(help: "Seconds of the economy window (default 600; 20 with --quick).")
    var economyDuration: Double?

    func run() async throws {
      let q = common.quick
      var scale = ScaleParameters(quick: q)
      if let idle { scale.idle = idle }
      var economy = EconomyParameters(quick: q)
      if let economyDuration { economy.duration = economyDuration }
      try await runBenchmarks(
        common,
        [
          (ServeBench.title, ServeBench(parameters: ServeParameters(quick: q)).run),
          (OneshotBench.title, OneshotBench(parameters: OneshotParameters(quick: q)).run),
          (TokenctlBench.title, TokenctlBench(parameters: TokenctlParameters(quick: q)).run),
          (SingleFlightBench.title, SingleFlightBench(parameters: SingleFlightParameters(quick: q)).run),
          (ScaleBench.title, ScaleBench(parameters: scale).run),
          (EconomyBench.title, EconomyBench(parameters: economy).run),
        ])
    }
  }

  struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Keep-alive throughput and latency of cached tokens, against nginx (goal at 8 connections).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Comma-separated connection counts (default 1,8,64).") var connections: String?
    @Option(help: "Comma-separated tokens: apikey (a static API key), oauth (a cached OAuth2 token).")
    var tokens: String?
    @Option(help: "Seconds per udsload run (default 5; 1 with --quick).") var duration: Double?
    @Option(help: "Rounds; brokerd and nginx alternate in each (default 3; 1 with --quick).") var rounds: Int?

    func validate() throws {
      if let c = connections, parseList(c).contains(where: { Int($0).map { $0 < 1 } ?? true }) {
        throw ValidationError("--connections takes positive integers, e.g. 1,8,64")
      }
      try validateTokens(tokens)
    }

    func run() async throws {
      var p = ServeParameters(quick: common.quick)
      if let connections { p.connections = parseList(connections).compactMap { Int($0) } }
      if let tokens { p.tokens = parseList(tokens) }
      if let duration { p.duration = duration }
      if let rounds { p.rounds = max(1, rounds) }
      try await runBenchmarks(common, [(ServeBench.title, ServeBench(parameters: p).run)])
    }
  }

  struct Instructions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "User-space instructions per cached answer, brokerd and nginx each under valgrind (no goal: a "
        + "figure that does not move with the machine's load).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Comma-separated tokens: apikey, oauth.") var tokens: String?
    @Option(help: "Seconds of counted load per server and token (default 5; 2 with --quick).")
    var duration: Double?

    func validate() throws {
      try validateTokens(tokens)
    }

    func run() async throws {
      var b = InstructionsBench()
      if common.quick { b.duration = 2 }
      if let duration { b.duration = duration }
      if let tokens { b.tokens = parseList(tokens) }
      try await runBenchmarks(common, [(InstructionsBench.title, b.run)])
    }
  }

  struct Oneshot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "One request per connection, as `curl --unix-socket` makes it (goal: p50 ≤ 0.3 ms).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Comma-separated tokens: apikey, oauth.") var tokens: String?
    @Option(help: "Seconds per udsload run (default 5; 1 with --quick).") var duration: Double?
    @Option(help: "Rounds (default 3; 1 with --quick).") var rounds: Int?

    func validate() throws {
      try validateTokens(tokens)
    }

    func run() async throws {
      var p = OneshotParameters(quick: common.quick)
      if let tokens { p.tokens = parseList(tokens) }
      if let duration { p.duration = duration }
      if let rounds { p.rounds = max(1, rounds) }
      try await runBenchmarks(common, [(OneshotBench.title, OneshotBench(parameters: p).run)])
    }
  }

  struct Tokenctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "`tokenctl token NAME` as a whole process, against oidc-agent's `oidc-token`.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Runs of each command (default 200; 30 with --quick).") var runs: Int?

    func run() async throws {
      var p = TokenctlParameters(quick: common.quick)
      if let runs { p.runs = max(1, runs) }
      try await runBenchmarks(common, [(TokenctlBench.title, TokenctlBench(parameters: p).run)])
    }
  }

  struct SingleFlight: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "singleflight",
      abstract: "Concurrent requests for a cold scope set make exactly one upstream request.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Concurrent requests (default 1000).") var requests: Int?
    @Option(help: "Seconds the fake upstream holds the token request (default 1).") var upstreamDelay: Double?

    func run() async throws {
      var p = SingleFlightParameters(quick: common.quick)
      if let requests { p.requests = max(1, requests) }
      if let upstreamDelay { p.upstreamDelay = upstreamDelay }
      try await runBenchmarks(common, [(SingleFlightBench.title, SingleFlightBench(parameters: p).run)])
    }
  }

  struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Start to READY, RSS and idle CPU with many providers and cached scope-set tokens.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Providers of the large daemon (default 1000; 200 with --quick).") var providers: Int?
    @Option(help: "Providers of the small daemon, whose RSS has the 32 MiB goal (default 100).")
    var smallProviders: Int?
    @Option(help: "Scope-set tokens cached in the small daemon (default 10000; 1000 with --quick).")
    var scopeSets: Int?
    @Option(help: "Seconds of the idle window (default 60; 5 with --quick).") var idle: Double?
    @Option(help: "Seconds from READY to the idle window (default 12: past the start-up fetches' deadlines).")
    var settle: Double?

    func run() async throws {
      var p = ScaleParameters(quick: common.quick)
      if let settle { p.settle = max(0, settle) }
      if let providers { p.providers = max(1, providers) }
      if let smallProviders { p.smallProviders = max(ScaleBench.scopedProviders, smallProviders) }
      if let scopeSets { p.scopeSets = max(ScaleBench.scopedProviders, scopeSets) }
      if let idle { p.idle = idle }
      try await runBenchmarks(common, [(ScaleBench.title, ScaleBench(parameters: p).run)])
    }
  }

  struct Economy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Upstream requests per token lifetime with short tokens under steady client load.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Seconds of the window (default 600; 20 with --quick).") var duration: Double?
    @Option(help: "Token lifetime in seconds (default 5).") var lifetime: Int?
    @Option(help: "[broker] refresh_at (default 0.8).") var refreshAt: Double?
    @Option(help: "[broker] refresh_jitter (default 0).") var jitter: Double?
    @Option(help: "Client threads (default 4).") var clients: Int?

    func run() async throws {
      var p = EconomyParameters(quick: common.quick)
      if let duration { p.duration = duration }
      if let lifetime { p.lifetime = max(2, lifetime) }
      if let refreshAt { p.refreshAt = refreshAt }
      if let jitter { p.jitter = jitter }
      if let clients { p.clients = max(1, clients) }
      try await runBenchmarks(common, [(EconomyBench.title, EconomyBench(parameters: p).run)])
    }
  }

  struct Fleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Brokers sharing one credential through PostgreSQL: requests per token lifetime, takeover after "
        + "SIGKILL, RSS and idle CPU next to a lone broker (needs root and PostgreSQL 15).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Comma-separated fleet sizes (default 3,10; 3 with --quick).") var sizes: String?
    @Option(help: "Token lifetime in seconds (default 10).") var lifetime: Int?
    @Option(help: "Token lifetimes in the window (default 4; 2 with --quick).") var lifetimes: Int?
    @Option(help: "Seconds of the idle CPU window (default 20; 5 with --quick).") var idle: Double?

    func run() async throws {
      var p = FleetParameters(quick: common.quick)
      if let sizes { p.sizes = parseList(sizes).compactMap { Int($0) }.filter { $0 > 0 } }
      if let lifetime { p.lifetime = max(4, lifetime) }
      if let lifetimes { p.lifetimes = max(1, lifetimes) }
      if let idle { p.idle = max(1, idle) }
      try await runBenchmarks(common, [(FleetBench.title, FleetBench(parameters: p).run)])
    }
  }
}

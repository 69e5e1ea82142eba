import ArgumentParser
import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

@main
struct TokenBrokerReliability: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token-broker-reliability",
    abstract: "Crash-consistency, load and fault suites against the real token-brokerd.",
    discussion: """
      Spawns token-brokerd (from the same build directory, or --daemon PATH) with generated
      configs and hosts the fake upstream in-process. Each suite prints its figures to stderr,
      one `RESULT {json}` line to stdout, and exits 1 on any failure.
      """,
    subcommands: [Crash.self, Load.self, Faults.self, All.self])
}

struct DaemonOption: ParsableArguments {
  @Option(help: "The token-brokerd to test (default: the one next to this executable).")
  var daemon: String?

  @Flag(help: "Keep the scratch directory (configs, state, daemon log, strace log).")
  var keep = false
}

extension TokenBrokerReliability {
  struct Crash: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "kill -9 at random moments during refresh-token rotation; classify every restart.")

    @Option(help: "Kill/restart cycles.") var cycles = 1000
    @Option(help: "Upper bound of the random kill delay during forced rotations (ms).") var maxKillDelay =
      120.0
    @Option(help: "Delay of every upstream answer after the server rotated (ms).") var upstreamLatency = 2.0
    @Option(help: "Token lifetime the upstream issues (s); refreshes also run on the daemon's timer.")
    var lifetime = 2
    @Option(help: "Seed of the kill delays (default: from the clock).") var seed: UInt64?
    @Flag(inversion: .prefixedNo, help: "Check the write order with strace on one run first.") var strace =
      true
    @OptionGroup var common: DaemonOption

    func run() throws {
      var o = CrashSuite.Options()
      o.cycles = cycles
      o.maxKillDelayMs = maxKillDelay
      o.upstreamLatencyMs = upstreamLatency
      o.lifetime = lifetime
      if let seed { o.seed = seed }
      o.strace = strace
      o.daemon = common.daemon
      o.keep = common.keep
      let passed = try Self.execute(o)
      if !passed { throw ExitCode.failure }
    }

    static func execute(_ o: CrashSuite.Options) throws -> Bool {
      let t0 = monotonic()
      let suite = try CrashSuite(options: o)
      let c = try suite.run()
      let seconds = monotonic() - t0
      log(
        """
        crash: \(o.cycles) cycles in \(Int(seconds)) s (seed \(o.seed)):
          intact (grant kept, daemon ok after restart):         \(c.intact)
          window (server rotated, answer lost → needs_login):   \(c.window)
          failures:                                             \(c.failures.count)
          killed during start-up / during rotations:            \(c.killedDuringStartup) / \(c.killedDuringRotation)
          kills that left NAME.state.tmp / no state file yet:   \(c.tempFileLeft) / \(c.noStateFile)
          refresh-token rotations / daemon starts:              \(c.rotations) / \(c.restarts)
        """)
      for f in c.failures { log("crash: FAILURE \(f)") }
      printResult([
        ("suite", "crash"), ("cycles", o.cycles), ("intact", c.intact), ("window", c.window),
        ("failures", c.failures.count), ("failure_details", c.failures), ("rotations", c.rotations),
        ("restarts", c.restarts), ("temp_file_left", c.tempFileLeft), ("no_state_file", c.noStateFile),
        ("killed_during_startup", c.killedDuringStartup), ("killed_during_rotation", c.killedDuringRotation),
        ("strace_sequences", suite.straceReport?.sequences ?? -1),
        ("strace_problems", suite.straceReport?.problems ?? []), ("seconds", Int(seconds)), ("seed", o.seed),
      ])
      return c.failures.isEmpty && c.intact + c.window == o.cycles
    }
  }

  struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Concurrent clients, a burst of requests, then a soak with RSS sampling.")

    @Option(help: "Concurrent clients (connections).") var clients = 1024
    @Option(help: "Requests of the burst.") var requests = 1_000_000
    @Option(help: "Seconds of the soak after the burst (0: none).") var soak = 600.0
    @Option(help: "Requests per second during the soak.") var soakRate = 2000.0
    @Option(help: "Every Nth client opens a new connection per request (0: none).") var churnEvery = 8
    @Option(help: "Seconds between RSS samples.") var sampleInterval = 10.0
    @OptionGroup var common: DaemonOption

    func run() throws {
      var o = LoadSuite.Options()
      o.clients = clients
      o.requests = requests
      o.soak = soak
      o.soakRate = soakRate
      o.churnEvery = churnEvery
      o.sampleInterval = sampleInterval
      o.daemon = common.daemon
      o.keep = common.keep
      if !(try Self.execute(o)) { throw ExitCode.failure }
    }

    static func execute(_ o: LoadSuite.Options) throws -> Bool {
      let r = try LoadSuite(options: o).run()
      let s = r.stats
      let rss = r.samples.map(\.rssKiB)
      log(
        """
        load: \(o.clients) clients: \(s.completed) answered, \(s.errors) errors \(s.errors > 0 ? "\(s.errorKinds)" : "")
          burst: \(o.requests) requests in \(String(format: "%.1f", r.burstSeconds)) s = \(Int(Double(o.requests) / max(0.001, r.burstSeconds))) req/s; soak: \(r.soakRequests) requests in \(Int(o.soak)) s
          latency p50 \(ms(s.percentile(0.5))) p99 \(ms(s.percentile(0.99))) p99.9 \(ms(s.percentile(0.999))) max \(ms(s.maxLatency))
          connections opened \(s.connects) (backlog-full retries \(s.connectRetries)); upstream requests \(r.upstreamRequests)
          daemon RSS \(rss.min().map { "\($0 / 1024)" } ?? "?")–\(rss.max().map { "\($0 / 1024)" } ?? "?") MiB; soak growth \(r.rssGrowthKiB) KiB (\(r.rssFlat ? "flat" : "NOT flat")); SIGTERM: \(r.daemonExit)
        """)
      for e in s.examples { log("load: error: \(e)") }
      var minute = -1.0
      for sample in r.samples where sample.t - minute >= 60 || sample.t == r.samples.last?.t {
        minute = sample.t
        log(
          "load: t=\(Int(sample.t)) s \(sample.phase) RSS \(sample.rssKiB / 1024) MiB fds \(sample.fds) threads \(sample.threads)"
        )
      }
      for f in r.failures { log("load: FAILURE \(f)") }
      printResult([
        ("suite", "load"), ("clients", o.clients), ("requests", o.requests), ("answered", s.completed),
        ("errors", s.errors), ("error_kinds", s.errorKinds), ("error_examples", s.examples),
        ("burst_seconds", r.burstSeconds), ("soak_seconds", o.soak), ("soak_requests", r.soakRequests),
        ("p50_ms", s.percentile(0.5) * 1000), ("p99_ms", s.percentile(0.99) * 1000),
        ("max_ms", s.maxLatency * 1000),
        ("rss_kib", rss), ("rss_t", r.samples.map { Int($0.t) }), ("fds", r.samples.map(\.fds)),
        ("rss_growth_kib", r.rssGrowthKiB), ("rss_flat", r.rssFlat),
        ("upstream_requests", r.upstreamRequests),
        ("daemon_exit", r.daemonExit), ("failures", r.failures),
      ])
      return r.failures.isEmpty
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }
  }

  struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Upstream faults and extreme values against a daemon that holds a valid token.")
    @OptionGroup var common: DaemonOption

    func run() throws {
      if !(try Self.execute(common)) { throw ExitCode.failure }
    }

    static func execute(_ common: DaemonOption) throws -> Bool {
      let suite = FaultSuite()
      suite.daemonPath = common.daemon
      suite.keep = common.keep
      let outcomes = try suite.run()
      for o in outcomes {
        log("faults: \(o.passed ? "ok  " : "FAIL") \(o.name)\(o.detail.isEmpty ? "" : ": " + o.detail)")
      }
      printResult([
        ("suite", "faults"), ("passed", outcomes.filter(\.passed).map(\.name)),
        ("failed", outcomes.filter { !$0.passed }.map { "\($0.name): \($0.detail)" }),
      ])
      return outcomes.allSatisfy(\.passed)
    }
  }

  struct All: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Every suite: full size, or --quick for the CI size (10 cycles, 64 × 20,000, no soak).")
    @Flag(help: "CI size.") var quick = false
    @OptionGroup var common: DaemonOption

    func run() throws {
      var crash = CrashSuite.Options()
      crash.cycles = quick ? 10 : 1000
      crash.daemon = common.daemon
      crash.keep = common.keep
      var load = LoadSuite.Options()
      if quick {
        load.clients = 64
        load.requests = 20_000
        load.soak = 0
      }
      load.daemon = common.daemon
      load.keep = common.keep
      var passed = try Crash.execute(crash)
      passed = try Load.execute(load) && passed
      passed = try Faults.execute(common) && passed
      if !passed { throw ExitCode.failure }
    }
  }
}

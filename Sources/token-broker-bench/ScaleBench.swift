import Foundation
import Synchronization
import TokenBrokerTestSupport

struct ScaleParameters: Sendable {
  var providers = 1000
  var smallProviders = 100
  var scopeSets = 3_100
  /// Seconds of the idle window.
  var idle = 60.0
  /// Seconds from READY to the idle window: past the 10 s request deadline of every
  /// start-up fetch (each leaves a cancelled sleep whose timer still fires once).
  var settle = 12.0

  init(quick: Bool) {
    if quick {
      providers = 200
      scopeSets = 1000
      idle = 5
    }
  }

  func command(_ bench: BenchEnvironment) -> String {
    "\(bench.invocation) scale --providers \(providers) --small-providers \(smallProviders) "
      + "--scope-sets \(scopeSets) --idle \(Format.flag(idle)) --settle \(Format.flag(settle))"
  }
}

/// Many providers and many cached scope-set tokens: start-up, memory, idle CPU.
struct ScaleBench: Sendable {
  var parameters: ScaleParameters

  static let title = "scale: providers, cached tokens, idle"
  /// Providers that hold the extra scope-set tokens (filled in parallel: one upstream
  /// request at a time per provider).
  /// Every provider of the small configuration takes scope sets: a provider keeps at most 32
  /// (its default set and 31 more; README "How it works").
  static let scopedProviders = 100
  static let scopeSetsPerProvider = 31

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    let result = await Result { try await offload { try measure(bench, upstream) } }
    await upstream.stop()
    return try result.get()
  }

  private func config(_ dir: TempDirectory, _ upstream: FakeUpstream, providers: Int, scopes: [String])
    -> String
  {
    var text = BenchConfig.broker(in: dir)
    for i in 0..<providers {
      text += BenchConfig.oauth("p\(i)", upstream, allowedScopes: i < Self.scopedProviders ? scopes : [])
    }
    return text
  }

  private func measure(_ bench: BenchEnvironment, _ upstream: FakeUpstream) throws -> BenchTable {
    let p = parameters
    var table = BenchTable(Self.title)
    let command = p.command(bench)
    table.notes = [
      "All providers are client-credentials providers against one in-process fake upstream (1 h tokens). "
        + "Start = posix_spawn to READY=1 on the bench's NOTIFY_SOCKET (kept bound, as under systemd). "
        + "Load average \(Proc.loadAverage) at start."
    ]
    // Scope sets `sI sJ` (I < J) from k scopes: k(k-1)/2 per provider.
    let perProvider = min(
      Self.scopeSetsPerProvider, (p.scopeSets + Self.scopedProviders - 1) / Self.scopedProviders)
    var k = 2
    while k * (k - 1) / 2 < perProvider { k += 1 }
    let scopes = (0..<k).map { "s\($0)" }

    // As `make install` ships it: every symbol stripped (install strips debug info only).
    let scratch = try TempDirectory()
    let stripped = scratch.file("token-brokerd")
    let strip = try runToEnd("/usr/bin/strip", ["--strip-all", "-o", stripped, bench.brokerd], within: 60)
    if strip.status == 0, let size = Proc.fileSize(stripped) {
      table.add(
        Figure(
          "token-brokerd, release, stripped: size", Format.mib(size / 1024), goal: "≤ 25 MiB",
          .check(size <= 25 * 1024 * 1024), command: command))
    }

    note("scale: \(p.smallProviders) providers")
    let small = try DaemonUnderTest.start(bench) { dir in
      config(dir, upstream, providers: p.smallProviders, scopes: scopes)
    }
    do {
      defer { small.stop() }
      usleep(2_000_000)
      let rss = try small.rss()
      table.add(
        Figure(
          "\(p.smallProviders) providers: RSS after READY (+2 s)", small.describeRSS(rss), goal: "≤ 16 MiB",
          .check(rss <= 16 * 1024), command: command))
      note("scale: filling \(perProvider * Self.scopedProviders) scope-set tokens")
      let fill = try fillScopeSets(small, perProvider: perProvider, scopes: scopes)
      let cached = try small.cachedTokens()
      let after = try small.rss()
      let filled = perProvider * Self.scopedProviders
      table.add(
        Figure(
          "\(p.smallProviders) providers + \(filled) scope-set tokens: RSS",
          "\(small.describeRSS(after)); +\(Format.fixed(Double(after - rss) * 1024 / Double(filled), 0)) B "
            + "per token; peak \(Format.mib(Proc.peakRSSKiB(small.pid) ?? 0)); \(cached) tokens cached; "
            + "filled in \(Format.seconds(fill))", command: command))
    }

    note("scale: \(p.providers) providers")
    let large = try DaemonUnderTest.start(bench, startupTimeout: 60) { dir in
      config(dir, upstream, providers: p.providers, scopes: [])
    }
    defer { large.stop() }
    let ok = try large.providersOK()
    table.add(
      Figure(
        "\(p.providers) providers: start to READY",
        "\(Format.seconds(large.readySeconds)) (\(ok.ok)/\(ok.total) ok at READY)", command: command))
    usleep(UInt32(p.settle * 1e6))
    let rss = try large.rss()
    table.add(
      Figure(
        "\(p.providers) providers: RSS after READY (+\(Format.flag(p.settle)) s)", large.describeRSS(rss),
        command: command))
    note("scale: idle for \(Format.flag(p.idle)) s")
    let idle = try IdleSample.measure(large.pid, seconds: p.idle)
    let threads = Proc.threads(large.pid) ?? 0
    table.add(
      Figure(
        "\(p.providers) providers: CPU while idle \(Format.flag(p.idle)) s (from READY+\(Format.flag(p.settle)) s)",
        "\(Format.fixed(idle.cpuPercent, 3)) % of a core (\(Format.fixed(idle.cpuSeconds * 1000, 0)) ms CPU)",
        goal: "≤ 0.1 % (near zero)", .check(idle.cpuPercent <= 0.1), command: command))
    table.add(
      Figure(
        "\(p.providers) providers: wake-ups while idle",
        "\(Format.fixed(idle.wakeupsPerSecond, 1))/s (context switches of the \(threads) threads)",
        command: command))
    table.add(
      Figure(
        "\(p.providers) providers: RSS after the idle window", large.describeRSS(try large.rss()),
        command: command))
    return table
  }

  /// Asks for `perProvider` distinct scope sets of each scoped provider, one keep-alive
  /// connection per provider in parallel; seconds taken.
  private func fillScopeSets(_ daemon: DaemonUnderTest, perProvider: Int, scopes: [String]) throws -> Double {
    var pairs: [String] = []
    outer: for i in 0..<scopes.count {
      for j in (i + 1)..<scopes.count {
        pairs.append("\(scopes[i])+\(scopes[j])")
        if pairs.count == perProvider { break outer }
      }
    }
    let failures = Mutex<[String]>([])
    let start = monotonic()
    let socket = daemon.socket
    let sets = pairs
    onThreads(Self.scopedProviders) { provider in
      do {
        let c = try KeepAliveConnection(socket)
        for s in sets {
          let status = try c.get("/v1/token/p\(provider)?scope=\(s)")
          if status != 200 { throw SetupError("p\(provider) scope \(s): \(status)") }
        }
      } catch {
        failures.withLock { $0.append("\(error)") }
      }
    }
    let seconds = monotonic() - start
    if let first = failures.withLock({ $0.first }) { throw SetupError("filling scope sets: \(first)") }
    return seconds
  }
}

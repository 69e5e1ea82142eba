import Foundation
import TokenBrokerClient
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

struct FleetParameters: Sendable {
  /// Fleet sizes measured in turn.
  var sizes = [3, 10]
  /// Seconds; the fake upstream's `expires_in`.
  var lifetime = 10
  /// Token lifetimes in the measured window.
  var lifetimes = 4
  /// Seconds of the idle CPU window.
  var idle = 20.0

  init(quick: Bool) {
    if quick {
      sizes = [3]
      lifetimes = 2
      idle = 5
    }
  }

  func command(_ bench: BenchEnvironment) -> String {
    "\(bench.invocation) fleet --sizes \(sizes.map(String.init).joined(separator: ",")) --lifetime \(lifetime) "
      + "--lifetimes \(lifetimes) --idle \(Format.flag(idle))"
  }
}

/// Brokers sharing one rotating credential through a real PostgreSQL (README "Fleet"):
/// upstream requests per token lifetime across the fleet, the time another broker needs to
/// take over from a refresher killed with SIGKILL, and what a fleet broker costs next to a
/// lone one (RSS, idle CPU, its helper included).
struct FleetBench: Sendable {
  var parameters: FleetParameters

  static let title = "fleet: brokers sharing one credential through PostgreSQL"

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let pg = try await PostgresFixture.start()
    defer { pg.teardown() }
    var table = BenchTable(Self.title)
    let command = parameters.command(bench)
    for size in parameters.sizes {
      try await perLifetime(bench, pg, size: size, table: &table, command: command)
    }
    try await takeoverAndCost(bench, pg, table: &table, command: command)
    table.notes = [
      "A refresh_token provider (rotating, reuse detection on) against the in-process fake upstream; "
        + "tokens of \(parameters.lifetime) s, [broker] refresh_at 0.8, refresh_jitter 0.05, min_valid 1; "
        + "PostgreSQL 15 on loopback (a throwaway cluster). Without [fleet] each broker refreshes on its own: "
        + "N requests per lifetime for N brokers, and a shared rotating refresh token is replayed."
    ]
    return table
  }

  static func fleetConfig(
    _ dir: TempDirectory, _ upstream: FakeUpstream, dsnFile: String, keyFile: String, fleet: String?,
    node: String, lease: Int = 30
  ) -> String {
    BenchConfig.broker(
      in: dir, extra: ["refresh_at = 0.8", "refresh_jitter = 0.05", "min_valid = 1", "request_timeout = 2"])
      + FleetConfig.rotatingProvider(upstream, seed: "rt_bench_seed")
      + (fleet.map {
        FleetConfig.table(dsnFile: dsnFile, keyFile: keyFile, node: node, name: $0, lease: lease)
      } ?? "")
  }

  static func secrets(_ pg: PostgresFixture) throws -> (dir: TempDirectory, dsn: String, key: String) {
    let dir = try TempDirectory("tbb-fleet")
    let (dsn, key) = try FleetConfig.writeSecrets(dsn: pg.dsn, in: dir)
    return (dir, dsn, key)
  }

  static func upstream(lifetime: Int) async throws -> FakeUpstream {
    var settings = FakeUpstream.Settings()
    settings.lifetime = lifetime
    let upstream = FakeUpstream(.powerverse, settings: settings, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    upstream.seedRefreshToken("rt_bench_seed")
    return upstream
  }

  private func perLifetime(
    _ bench: BenchEnvironment, _ pg: PostgresFixture, size: Int, table: inout BenchTable, command: String
  ) async throws {
    let p = parameters
    let upstream = try await Self.upstream(lifetime: p.lifetime)
    defer { Task { await upstream.stop() } }
    let (dir, dsn, key) = try Self.secrets(pg)
    defer { withExtendedLifetime(dir) {} }
    note("fleet: \(size) brokers, \(p.lifetimes) lifetimes of \(p.lifetime) s")
    let brokers = try await offload {
      try (1...size).map { i in
        try DaemonUnderTest.start(bench, label: "fleet-\(size)-b\(i)") { d in
          Self.fleetConfig(d, upstream, dsnFile: dsn, keyFile: key, fleet: "bench-\(size)", node: "b\(i)")
        }
      }
    }
    defer { for b in brokers { b.stop() } }
    let start = upstream.requestCount
    let window = Double(p.lifetimes * p.lifetime)
    try await offload {
      let end = monotonic() + window
      while monotonic() < end { usleep(200_000) }
    }
    let requests = upstream.requestCount - start
    let per = Double(requests) / Double(p.lifetimes)
    var served = 0
    for b in brokers where (try? b.get("/v1/token/pv").status) == 200 { served += 1 }
    table.add(
      Figure(
        "\(size) brokers: upstream requests per token lifetime",
        "\(Format.fixed(per, 2)) (\(requests) in \(Format.seconds(window)); \(served)/\(size) brokers serving)",
        goal: "≤ 1.25 (1/refresh_at), vs \(size) per lifetime without [fleet]",
        .check(per <= 1.25 + 1e-9 && served == size && !upstream.familyRevoked), command: command))
    table.add(
      Figure(
        "\(size) brokers: refresh token presented twice",
        upstream.familyRevoked ? "yes (grant revoked)" : "never",
        goal: "never", .check(!upstream.familyRevoked), command: command))
  }

  private func takeoverAndCost(
    _ bench: BenchEnvironment, _ pg: PostgresFixture, table: inout BenchTable, command: String
  ) async throws {
    let p = parameters
    let lease = 6
    let upstream = try await Self.upstream(lifetime: 3600)
    defer { Task { await upstream.stop() } }
    let (dir, dsn, key) = try Self.secrets(pg)
    defer { withExtendedLifetime(dir) {} }
    let brokers = try await offload {
      try (1...2).map { i in
        try DaemonUnderTest.start(bench, label: "takeover-b\(i)") { d in
          Self.fleetConfig(
            d, upstream, dsnFile: dsn, keyFile: key, fleet: "takeover", node: "b\(i)", lease: lease)
        }
      }
    }
    defer { for b in brokers { b.stop() } }
    // What one fleet broker costs, its helper included, next to a lone broker.
    let loneUpstream = try await Self.upstream(lifetime: 3600)
    defer { Task { await loneUpstream.stop() } }
    let lone = try await offload {
      try DaemonUnderTest.start(bench, label: "lone") { d in
        Self.fleetConfig(d, loneUpstream, dsnFile: dsn, keyFile: key, fleet: nil, node: "lone")
      }
    }
    defer { lone.stop() }
    let helper = Spawn.children(of: brokers[1].pid).first
    let brokerRSS = try brokers[1].rss()
    let helperRSS = helper.flatMap(Proc.rssKiB) ?? 0
    let loneRSS = try lone.rss()
    table.add(
      Figure(
        "RSS of a fleet broker (daemon + helper) vs a lone broker",
        "\(Format.mib(brokerRSS)) + \(Format.mib(helperRSS)) vs \(Format.mib(loneRSS))", command: command))
    let idle = p.idle
    let fleetPID = brokers[1].pid
    let lonePID = lone.pid
    async let fleetSample = offload { try IdleSample.measure(fleetPID, seconds: idle) }
    async let helperSample = offload { try helper.map { try IdleSample.measure($0, seconds: idle) } }
    async let loneSample = offload { try IdleSample.measure(lonePID, seconds: idle) }
    let (fleetIdle, helperIdle, loneIdle) = try await (fleetSample, helperSample, loneSample)
    table.add(
      Figure(
        "idle CPU of a fleet broker (daemon + helper) vs a lone broker",
        "\(Format.fixed(fleetIdle.cpuPercent, 2)) % + \(Format.fixed(helperIdle?.cpuPercent ?? 0, 2)) % vs "
          + "\(Format.fixed(loneIdle.cpuPercent, 2)) % of a core (\(Format.seconds(idle)) each)",
        command: command))

    // The refresher dies with its request on the wire (the upstream holds it unanswered).
    let before = upstream.requestCount
    upstream.failNext(.stall)
    let killed: Double = try await offload {
      Thread {
        var c = UnixHTTPClient(socketPath: brokers[0].socket)
        c.timeout = 5
        _ = try? c.request("POST", "/v1/providers/pv/refresh")
      }.start()
      try poll("the refresh to reach the upstream") { upstream.requestCount > before }
      brokers[0].child.send(SIGKILL)
      return monotonic()
    }
    let tookOver: Double = try await offload {
      var c = UnixHTTPClient(socketPath: brokers[1].socket)
      c.timeout = 30
      while monotonic() - killed < 60 {
        if (try? c.request("POST", "/v1/providers/pv/refresh").status) == 200,
          upstream.requestCount > before + 1
        {
          return monotonic()
        }
        usleep(100_000)
      }
      throw SetupError("no broker took over within 60 s")
    }
    let seconds = tookOver - killed
    table.add(
      Figure(
        "takeover after the refresher's SIGKILL (lease \(lease) s)", Format.seconds(seconds),
        goal: "≤ lease + request_timeout + 1 = \(lease + 3) s", .check(seconds <= Double(lease + 3)),
        command: command))
  }
}

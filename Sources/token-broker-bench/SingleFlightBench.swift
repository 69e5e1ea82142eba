import Foundation
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerTestSupport

struct SingleFlightParameters: Sendable {
  var requests = 1000
  /// Seconds the fake upstream holds the one token request, so that every client request
  /// arrives while it is in flight.
  var upstreamDelay = 1.0

  init(quick: Bool) {}

  func command(_ bench: BenchEnvironment) -> String {
    "\(bench.invocation) singleflight --requests \(requests) --upstream-delay \(Format.flag(upstreamDelay))"
  }
}

/// N concurrent requests for a scope set nobody asked for before: exactly one upstream request.
struct SingleFlightBench: Sendable {
  var parameters: SingleFlightParameters

  static let title = "singleflight: concurrent requests for a cold scope set"
  static let scopes = ["cold:read", "cold:write"]
  static let path = "/v1/token/sf?scope=cold:read+cold:write"
  /// Below the daemon's 512-connection cap (past it, connections get a 503 by design).
  static let daemonConnections = 500

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    var table = BenchTable(Self.title)
    let p = parameters
    table.notes = [
      "The fake upstream answers the token request after \(Format.flag(p.upstreamDelay)) s; every client "
        + "request is sent before that (see 'sent within'). Each figure counts upstream requests after READY."
    ]
    table.add(try await overDaemon(bench))
    table.add(try await inProcess(bench))
    return table
  }

  /// The daemon process: its connection cap is 512, so N requests go over 500 connections
  /// with the rest pipelined; all are sent before the upstream answers.
  private func overDaemon(_ bench: BenchEnvironment) async throws -> Figure {
    let p = parameters
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    let result = await Result {
      try await offload { () throws -> Figure in
        let daemon = try DaemonUnderTest.start(bench) { dir in
          BenchConfig.broker(in: dir) + BenchConfig.oauth("sf", upstream, allowedScopes: Self.scopes)
        }
        defer { daemon.stop() }
        let connections = min(p.requests, Self.daemonConnections)
        let perConnection = (p.requests + connections - 1) / connections
        let before = upstream.requestCount
        upstream.failNext(.delayed(p.upstreamDelay))
        note("singleflight: \(connections * perConnection) requests to token-brokerd")
        let r = FanOut.run(
          socket: daemon.socket, path: Self.path, connections: connections, perConnection: perConnection)
        usleep(200_000)
        return figure(
          "token-brokerd: \(connections * perConnection) requests (\(connections) conns × \(perConnection) "
            + "pipelined) → upstream requests",
          r, total: connections * perConnection, upstream: upstream.requestCount - before, bench: bench)
      }
    }
    await upstream.stop()
    return try result.get()
  }

  /// The same engines, socket API and server in this process with the connection cap raised:
  /// N separate connections, each with one request in flight at once.
  private func inProcess(_ bench: BenchEnvironment) async throws -> Figure {
    let p = parameters
    Proc.raiseFileLimit()
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    var (provider, secrets) = SeedProviders.config("sf", for: upstream)
    provider.scopes = []
    provider.allowedScopes = Self.scopes
    var limits = ServerLimits()
    limits.maxConnections = p.requests + 64
    let harness: BrokerHarness
    do {
      harness = try await BrokerHarness.start(
        providers: [provider], secrets: ["sf": secrets],
        clock: ManualClock(now: Date().timeIntervalSince1970),
        limits: limits)
    } catch {
      await upstream.stop()
      throw error
    }
    await harness.firstAttempts()
    let before = upstream.requestCount
    upstream.failNext(.delayed(p.upstreamDelay))
    note("singleflight: \(p.requests) connections to an in-process broker")
    let socket = harness.socketPath
    let r = await Result {
      try await offload {
        FanOut.run(socket: socket, path: Self.path, connections: p.requests, perConnection: 1)
      }
    }
    await harness.broker.settle()
    let count = upstream.requestCount - before
    await harness.shutdown()
    await upstream.stop()
    return figure(
      "in-process broker (cap raised): \(p.requests) conns × 1 request → upstream requests", try r.get(),
      total: p.requests, upstream: count, bench: bench)
  }

  private func figure(
    _ name: String, _ r: FanOut.Result, total: Int, upstream: Int, bench: BenchEnvironment
  ) -> Figure {
    let ok = r.statuses.filter { $0 == 200 }.count
    var measured =
      "\(upstream) (\(ok)/\(total) answered 200 in \(Format.seconds(r.totalSeconds)); all sent within "
      + "\(Format.seconds(r.sendSeconds)))"
    if !r.failures.isEmpty { measured += "; \(r.failures.count) failures: \(r.failures.prefix(2))" }
    let valid = r.sendSeconds < parameters.upstreamDelay
    if !valid { measured += "; requests took longer to send than the upstream delay" }
    return Figure(
      name, measured, goal: "exactly 1", .check(upstream == 1 && ok == total && valid),
      command: parameters.command(bench))
  }
}

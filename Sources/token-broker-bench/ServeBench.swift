import Foundation
import TokenBrokerTestSupport

/// The daemon serving a static API key and a cached OAuth2 token, and nginx serving bodies
/// of the same sizes at the same paths: shared by `serve` and `oneshot`.
final class ServingSetup: Sendable {
  let upstream: FakeUpstream
  let daemon: DaemonUnderTest
  let nginx: NginxReference?
  /// Why there is no nginx, when there is none.
  let nginxMissing: String?
  let bodySizes: [String: Int]

  static let tokens = ["apikey", "oauth"]
  static func path(_ token: String) -> String { "/v1/token/\(token)" }

  static func start(_ bench: BenchEnvironment) async throws -> ServingSetup {
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    do {
      return try await offload { try make(bench, upstream) }
    } catch {
      await upstream.stop()
      throw error
    }
  }

  /// The served providers: `apikey` (a static key) and `oauth` (a token from `upstream`).
  static func config(_ upstream: FakeUpstream) -> (TempDirectory) -> String {
    let key = "ak_live_" + String(repeating: "0123456789abcdef", count: 2)
    return { dir in
      BenchConfig.broker(in: dir) + BenchConfig.apiKey("apikey", key: key)
        + BenchConfig.oauth("oauth", upstream)
    }
  }

  private static func make(_ bench: BenchEnvironment, _ upstream: FakeUpstream) throws -> ServingSetup {
    let daemon = try DaemonUnderTest.start(bench, config: config(upstream))
    var bodies: [(path: String, body: [UInt8])] = []
    do {
      for t in tokens { bodies.append((path(t), try daemon.body(path(t)))) }
    } catch {
      daemon.stop()
      throw error
    }
    var sizes: [String: Int] = [:]
    for (t, b) in zip(tokens, bodies) { sizes[t] = b.body.count }
    do {
      let nginx = try NginxReference.start(bench, bodies: bodies)
      for (p, b) in bodies {
        let served = try nginx.bodyLength(p)
        guard served == b.count else {
          nginx.stop()
          throw SetupError("nginx serves \(served) bytes at \(p), the broker \(b.count)")
        }
      }
      return ServingSetup(
        upstream: upstream, daemon: daemon, nginx: nginx, nginxMissing: nil, bodySizes: sizes)
    } catch {
      note("no nginx comparison: \(error)")
      return ServingSetup(
        upstream: upstream, daemon: daemon, nginx: nil, nginxMissing: "\(error)", bodySizes: sizes)
    }
  }

  private init(
    upstream: FakeUpstream, daemon: DaemonUnderTest, nginx: NginxReference?, nginxMissing: String?,
    bodySizes: [String: Int]
  ) {
    self.upstream = upstream
    self.daemon = daemon
    self.nginx = nginx
    self.nginxMissing = nginxMissing
    self.bodySizes = bodySizes
  }

  var notes: [String] {
    var n = [
      "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(Proc.loadAverage) at start; "
        + "udsload, token-brokerd (1 event loop) and nginx (`worker_processes auto`) share them. Server CPU: "
        + "user + system time of the server's processes (/proc/PID/stat) over the rounds, per answer.",
      "Bodies: apikey \(bodySizes["apikey"] ?? 0) B, oauth \(bodySizes["oauth"] ?? 0) B; nginx returns bodies of "
        + "the same sizes at the same paths. Figures are medians over rounds; brokerd and nginx alternate.",
    ]
    if let nginx { n.append("Reference: \(nginx.version), access_log off, keepalive_requests unlimited.") }
    if let nginxMissing { n.append("No nginx comparison: \(nginxMissing)") }
    return n
  }

  func stop() async {
    nginx?.stop()
    daemon.stop()
    await upstream.stop()
  }
}

struct ServeParameters: Sendable {
  var connections = [1, 8, 64]
  var tokens = ServingSetup.tokens
  var duration = 5.0
  var rounds = 3

  init(quick: Bool) {
    if quick {
      duration = 1
      rounds = 1
    }
  }

  func command(_ bench: BenchEnvironment, connections c: Int, token t: String) -> String {
    "\(bench.invocation) serve --connections \(c) --tokens \(t) --duration \(Format.flag(duration)) "
      + "--rounds \(rounds)\(bench.udsloadFlag)"
  }
}

/// Keep-alive throughput and latency of cached tokens, against nginx.
struct ServeBench: Sendable {
  var parameters: ServeParameters

  static let title = "serve: cached token, keep-alive connections (udsload)"

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let setup = try await ServingSetup.start(bench)
    let result = await Result { try await offload { try measure(bench, setup) } }
    await setup.stop()
    return try result.get()
  }

  private func measure(_ bench: BenchEnvironment, _ setup: ServingSetup) throws -> BenchTable {
    var table = BenchTable(Self.title)
    table.notes = setup.notes
    let p = parameters
    for c in p.connections {
      for t in p.tokens {
        var broker = RoundSummary()
        var nginx = RoundSummary()
        for round in 0..<p.rounds {
          note("serve: \(t), \(c) connections, round \(round + 1)/\(p.rounds)")
          let runBroker = {
            let processes = [setup.daemon.pid]
            let before = Proc.cpuTicks(processes)
            let threads = Proc.threadTicks(processes)
            broker.rounds.append(
              try Udsload.run(
                bench, socket: setup.daemon.socket, path: ServingSetup.path(t), connections: c,
                seconds: p.duration))
            broker.serverTicks += Proc.cpuTicks(processes) - before
            broker.busiestThread.append(
              Proc.busiestThreadShare(of: processes, since: threads, seconds: p.duration))
          }
          let runNginx = {
            guard let n = setup.nginx else { return }
            let processes = [n.child.pid] + Spawn.children(of: n.child.pid)
            let before = Proc.cpuTicks(processes)
            let threads = Proc.threadTicks(processes)
            nginx.rounds.append(
              try Udsload.run(
                bench, socket: n.socket, path: ServingSetup.path(t), connections: c, seconds: p.duration))
            nginx.serverTicks += Proc.cpuTicks(processes) - before
            nginx.busiestThread.append(
              Proc.busiestThreadShare(of: processes, since: threads, seconds: p.duration))
          }
          if round % 2 == 0 {
            try runBroker()
            try runNginx()
          } else {
            try runNginx()
            try runBroker()
          }
        }
        figures(token: t, connections: c, broker: broker, nginx: nginx, bench: bench)
          .forEach { table.add($0) }
      }
    }
    return table
  }

  private func figures(
    token t: String, connections c: Int, broker: RoundSummary, nginx: RoundSummary, bench: BenchEnvironment
  ) -> [Figure] {
    let command = parameters.command(bench, connections: c, token: t)
    let judged = c == 8
    let conns = "\(c) conn\(c == 1 ? "" : "s")"
    guard !nginx.rounds.isEmpty else {
      return [
        Figure(
          "\(t), \(conns): req/s", "\(Format.int(broker.rps)) (no nginx)",
          goal: judged ? "≥ 0.80× nginx" : "—",
          judged ? .skipped : .info, command: command),
        Figure(
          "\(t), \(conns): p99 / p50", "\(Format.micros(broker.p99)) / \(Format.micros(broker.p50))",
          goal: judged ? "p99 ≤ 1.5× nginx" : "—", judged ? .skipped : .info, command: command),
      ]
    }
    let rpsRatio = broker.rps / nginx.rps
    let p99Ratio = broker.p99 / nginx.p99
    return [
      Figure(
        "\(t), \(conns): req/s brokerd / nginx",
        "\(Format.int(broker.rps)) / \(Format.int(nginx.rps)) = \(Format.fixed(rpsRatio, 2))×",
        goal: judged ? "≥ 0.80×" : "—", judged ? .check(rpsRatio >= 0.8) : .info, command: command),
      Figure(
        "\(t), \(conns): p99 brokerd / nginx",
        "\(Format.micros(broker.p99)) / \(Format.micros(nginx.p99)) = \(Format.fixed(p99Ratio, 2))× "
          + "(p50 \(Format.micros(broker.p50)) / \(Format.micros(nginx.p50)))",
        goal: judged ? "≤ 1.5×" : "—", judged ? .check(p99Ratio <= 1.5) : .info, command: command),
      Figure(
        "\(t), \(conns): server CPU per answer, brokerd / nginx",
        "\(Format.fixed(broker.cpuPerAnswer, 1)) µs / \(Format.fixed(nginx.cpuPerAnswer, 1)) µs = "
          + "\(Format.fixed(broker.cpuPerAnswer / nginx.cpuPerAnswer, 2))×", command: command),
      Figure(
        "\(t), \(conns): server CPU in cores (busiest thread), brokerd / nginx",
        "\(cores(broker)) / \(cores(nginx))", command: command),
    ]
  }

  /// The server's CPU over the rounds in cores, and its busiest thread's share of one core
  /// (a server whose one busy thread is near 1.00 can answer no faster).
  private func cores(_ s: RoundSummary) -> String {
    let seconds = Double(s.rounds.count) * parameters.duration
    let all = seconds > 0 ? Double(s.serverTicks) / Proc.ticksPerSecond / seconds : 0
    return "\(Format.fixed(all, 2)) (\(Format.fixed(Stats.median(s.busiestThread), 2)))"
  }
}

extension Result where Failure == any Error {
  /// `Result(catching:)` for async bodies.
  init(_ body: () async throws -> Success) async {
    do { self = .success(try await body()) } catch { self = .failure(error) }
  }
}

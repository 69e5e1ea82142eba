import Foundation
import TokenBrokerTestSupport

struct OneshotParameters: Sendable {
  var tokens = ServingSetup.tokens
  var duration = 5.0
  var rounds = 3

  init(quick: Bool) {
    if quick {
      duration = 1
      rounds = 1
    }
  }

  func command(_ bench: BenchEnvironment, token t: String) -> String {
    "\(bench.invocation) oneshot --tokens \(t) --duration \(Format.flag(duration)) --rounds \(rounds)"
      + bench.udsloadFlag
  }
}

/// One request per connection, one client at a time (as `curl --unix-socket` does): the
/// latency includes connect, accept and the peer-credential lookup.
struct OneshotBench: Sendable {
  var parameters: OneshotParameters

  static let title = "oneshot: one request per connection (udsload -1, 1 client)"

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
    for t in p.tokens {
      var broker = RoundSummary()
      var nginx = RoundSummary()
      for round in 0..<p.rounds {
        note("oneshot: \(t), round \(round + 1)/\(p.rounds)")
        let runBroker = {
          broker.rounds.append(
            try Udsload.run(
              bench, socket: setup.daemon.socket, path: ServingSetup.path(t), connections: 1,
              seconds: p.duration,
              oneshot: true))
        }
        let runNginx = {
          guard let n = setup.nginx else { return }
          nginx.rounds.append(
            try Udsload.run(
              bench, socket: n.socket, path: ServingSetup.path(t), connections: 1, seconds: p.duration,
              oneshot: true))
        }
        if round % 2 == 0 {
          try runBroker()
          try runNginx()
        } else {
          try runNginx()
          try runBroker()
        }
      }
      let reference =
        nginx.rounds.isEmpty
        ? "no nginx" : "nginx p50 \(Format.ms(nginx.p50 / 1e6)), p99 \(Format.ms(nginx.p99 / 1e6))"
      table.add(
        Figure(
          "\(t): p50 connect + request + answer",
          "\(Format.ms(broker.p50 / 1e6)) (p99 \(Format.ms(broker.p99 / 1e6)), "
            + "\(Format.int(broker.rps)) req/s; \(reference))",
          goal: "≤ 0.30 ms", .check(broker.p50 <= 300), command: p.command(bench, token: t)))
    }
    return table
  }
}

import Foundation
import TokenBrokerTestSupport

/// One run of the project's load generator (`udsload.c`, compiled by the bench).
struct UdsloadResult: Sendable {
  var requests: Int
  var rps: Double
  var p50: Double
  var p99: Double
  var p999: Double
  var max: Double
  var errors: Int
  var non200: Int

  /// Parses `requests=N rps=N p50_us=N p99_us=N p999_us=N max_us=N errors=N non200=N conns=N`.
  init(parsing line: String) throws {
    var v: [String: Double] = [:]
    for pair in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
      let kv = pair.split(separator: "=", maxSplits: 1)
      if kv.count == 2, let d = Double(kv[1]) { v[String(kv[0])] = d }
    }
    guard let requests = v["requests"], let rps = v["rps"], let p50 = v["p50_us"], let p99 = v["p99_us"]
    else {
      throw SetupError("udsload printed no result: \(line)")
    }
    self.requests = Int(requests)
    self.rps = rps
    self.p50 = p50
    self.p99 = p99
    self.p999 = v["p999_us"] ?? 0
    self.max = v["max_us"] ?? 0
    self.errors = Int(v["errors"] ?? 0)
    self.non200 = Int(v["non200"] ?? 0)
  }
}

enum Udsload {
  /// `udsload -s socket -p path -c conns -d seconds [-1]`; fails on errors or non-200 answers.
  static func run(
    _ bench: BenchEnvironment, socket: String, path: String, connections: Int, seconds: Double,
    oneshot: Bool = false
  ) throws -> UdsloadResult {
    let binary = try bench.udsloadBinary()
    var argv = [binary, "-s", socket, "-p", path, "-c", String(connections), "-d", String(seconds)]
    if oneshot { argv.append("-1") }
    let r = try runToEnd(argv[0], Array(argv.dropFirst()), within: seconds + 60)
    let result = try UdsloadResult(parsing: r.stdout)
    if result.errors > 0 || result.non200 > 0 || result.requests == 0 {
      throw SetupError(
        "\(argv.joined(separator: " ")): \(result.errors) errors, \(result.non200) non-200 answers, "
          + "\(result.requests) requests")
    }
    return result
  }
}

/// Medians over rounds (the machine is shared: one slow round must not decide a figure).
struct RoundSummary: Sendable {
  var rounds: [UdsloadResult] = []

  var rps: Double { Stats.median(rounds.map(\.rps)) }
  var p50: Double { Stats.median(rounds.map(\.p50)) }
  var p99: Double { Stats.median(rounds.map(\.p99)) }
  var requests: Int { rounds.reduce(0) { $0 + $1.requests } }
  /// CPU time (user + system, clock ticks) the server's processes spent over the rounds.
  var serverTicks = 0
  /// Per round, the busiest server thread's CPU as a share of one core
  /// (`Proc.busiestThreadShare`).
  var busiestThread: [Double] = []

  /// Microseconds of the server's CPU per answer, over all rounds.
  var cpuPerAnswer: Double {
    requests > 0 ? Double(serverTicks) / Proc.ticksPerSecond * 1e6 / Double(requests) : 0
  }
}

enum Stats {
  static func median(_ values: [Double]) -> Double {
    percentile(values, 0.5)
  }

  /// Nearest-rank on the sorted values (as udsload computes its own percentiles).
  static func percentile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    if q == 0.5 && sorted.count % 2 == 0 {
      return (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
    return sorted[Int((q * Double(sorted.count - 1)).rounded())]
  }
}

import Foundation
import Synchronization
import TokenBrokerTestSupport

struct EconomyParameters: Sendable {
  /// Seconds of the measured window.
  var duration = 600.0
  /// Seconds; the fake upstream's `expires_in`.
  var lifetime = 5
  var refreshAt = 0.8
  /// 0 by default: with jitter the mean interval is refresh_at × lifetime, so a window's
  /// count straddles the goal by chance; without it every interval is at least that long.
  var jitter = 0.0
  /// Client threads asking for both tokens every 50 ms throughout.
  var clients = 4

  init(quick: Bool) {
    if quick { duration = 20 }
  }

  func command(_ bench: BenchEnvironment) -> String {
    "\(bench.invocation) economy --duration \(Format.flag(duration)) --lifetime \(lifetime) "
      + "--refresh-at \(Format.flag(refreshAt)) --jitter \(Format.flag(jitter)) --clients \(clients)"
  }
}

/// Short-lived tokens under steady client load: every refresh is the scheduled one.
struct EconomyBench: Sendable {
  var parameters: EconomyParameters

  static let title = "economy: upstream requests per token lifetime"
  static let scope = "econ:read"

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    let lifetime = parameters.lifetime
    upstream.update { $0.lifetime = lifetime }
    try await upstream.start()
    let result = await Result { try await offload { try measure(bench, upstream) } }
    await upstream.stop()
    return try result.get()
  }

  private final class Recorder: Sendable {
    let arrivals = Mutex<[(at: Double, scope: String)]>([])
    let stopped = Atomic<Bool>(false)
    let served = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
  }

  private func measure(_ bench: BenchEnvironment, _ upstream: FakeUpstream) throws -> BenchTable {
    let p = parameters
    var table = BenchTable(Self.title)
    let recorder = Recorder()
    // Timestamps each upstream request as it shows up (polled every 5 ms).
    let watcher = Thread {
      var seen = 0
      while !recorder.stopped.load(ordering: .relaxed) {
        let all = upstream.requests
        if all.count > seen {
          let now = monotonic()
          let new = all[seen...].map { (at: now, scope: $0.form["scope"] ?? "") }
          recorder.arrivals.withLock { $0 += new }
          seen = all.count
        }
        usleep(5_000)
      }
    }
    watcher.start()
    defer { recorder.stopped.store(true, ordering: .relaxed) }
    let daemon = try DaemonUnderTest.start(bench) { dir in
      BenchConfig.broker(
        in: dir,
        extra: ["refresh_at = \(p.refreshAt)", "refresh_jitter = \(p.jitter)", "min_valid = 1"])
        + BenchConfig.oauth("econ", upstream, allowedScopes: [Self.scope])
    }
    defer { daemon.stop() }
    let start = monotonic()
    let end = start + p.duration
    note("economy: \(Format.flag(p.duration)) s of \(p.lifetime) s tokens under \(p.clients) clients")
    let socket = daemon.socket
    onThreads(p.clients) { _ in
      guard let c = try? KeepAliveConnection(socket) else {
        recorder.failed.add(1, ordering: .relaxed)
        return
      }
      while monotonic() < end {
        for path in ["/v1/token/econ", "/v1/token/econ?scope=\(Self.scope)"] {
          let status = (try? c.get(path)) ?? 0
          if status == 200 {
            recorder.served.add(1, ordering: .relaxed)
          } else {
            recorder.failed.add(1, ordering: .relaxed)
          }
        }
        usleep(50_000)
      }
    }
    let stopAt = monotonic()
    recorder.stopped.store(true, ordering: .relaxed)
    let arrivals = recorder.arrivals.withLock { $0 }
    let command = p.command(bench)
    let nominal = p.refreshAt * Double(p.lifetime)
    let bound = 1 / p.refreshAt
    var duplicates = 0
    for (label, key) in [("default token", ""), ("scope set \(Self.scope)", Self.scope)] {
      let times = arrivals.filter { $0.scope == key }.map(\.at).sorted()
      guard let first = times.first else {
        table.add(Figure("\(label): upstream requests", "none seen", goal: "≥ 1", .fail, command: command))
        continue
      }
      let intervals = zip(times.dropFirst(), times).map { $0 - $1 }
      duplicates += intervals.filter { $0 < 0.5 * nominal }.count
      let window = stopAt - first
      let lifetimes = window / Double(p.lifetime)
      let ratio = Double(times.count - 1) / lifetimes
      let range =
        intervals.isEmpty
        ? "" : "; intervals \(Format.fixed(intervals.min()!, 2))–\(Format.fixed(intervals.max()!, 2)) s"
      table.add(
        Figure(
          "\(label): refreshes per \(p.lifetime) s lifetime",
          "\(Format.fixed(ratio, 3)) (\(times.count - 1) refreshes in \(Format.seconds(window))\(range))",
          goal: "≤ \(Format.fixed(bound, 3)) (1/refresh_at)", .check(ratio <= bound + 1e-9), command: command)
      )
    }
    table.add(
      Figure(
        "duplicate refreshes (interval < \(Format.fixed(0.5 * nominal, 1)) s)", "\(duplicates)", goal: "0",
        .check(duplicates == 0), command: command))
    let served = recorder.served.load(ordering: .relaxed)
    let failed = recorder.failed.load(ordering: .relaxed)
    table.add(
      Figure(
        "client requests during the window", "\(Format.int(Double(served))) answered 200, \(failed) not",
        command: command))
    table.notes = [
      "[broker] refresh_at = \(p.refreshAt), refresh_jitter = \(p.jitter), min_valid = 1; tokens of "
        + "\(p.lifetime) s; \(p.clients) clients ask for both tokens every 50 ms over one keep-alive connection "
        + "each. Refreshes are counted from each token's first fetch to the end of the window. Load average "
        + "\(Proc.loadAverage) at the end."
    ]
    return table
  }
}

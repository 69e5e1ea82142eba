import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine

/// The one-line `STATUS=` summary:
/// `4/5 providers ok; powernaut degraded: upstream 503, next attempt 2026-12-02T18:52:10Z`.
/// A time, not a countdown: the line is sent when a state changes, not every second.
package enum StatusLine {
  /// Longest line sent; systemctl status shows one line anyway.
  static let maximumLength = 400

  package static func summary(_ statuses: [ProviderStatus], now: Double) -> String {
    let ok = statuses.filter { $0.state == .ok }.count
    var line = "\(ok)/\(statuses.count) providers ok"
    for s in statuses where s.state != .ok {
      var part = "\(s.name) \(s.state.rawValue)"
      if let e = s.lastError { part += ": \(e)" }
      if let next = s.nextRefresh, s.failures > 0 {
        part += ", next attempt \(Timestamp.rfc3339(max(now, next)))"
      }
      line += "; " + part
    }
    return cut(line)
  }

  /// Before READY=1: `starting: waiting for the first token of 5 providers`.
  package static func starting(providers: Int) -> String {
    "starting: waiting for the first token of \(providers) provider\(providers == 1 ? "" : "s")"
  }

  /// The running summary, with the problem of a refused reload while the old config is in force.
  package static func running(_ summary: String, refusedReload: String?) -> String {
    guard let refusedReload else { return summary }
    return cut(summary + "; reload refused (old configuration in force): " + refusedReload)
  }

  /// The first problem of a refused configuration, and how many more there are.
  package static func problems(_ problems: [String]) -> String {
    guard let first = problems.first else { return "invalid configuration" }
    return problems.count == 1 ? first : "\(first) (and \(problems.count - 1) more)"
  }

  static func cut(_ line: String) -> String {
    line.count > maximumLength ? String(line.prefix(maximumLength)) + "…" : line
  }
}

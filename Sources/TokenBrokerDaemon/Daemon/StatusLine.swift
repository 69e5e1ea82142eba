import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine

/// The one-line `STATUS=` summary: `4/5 providers ok; 1 degraded (next attempt
/// 2026-12-02T18:52:10Z); tokenctl status for details`. Every local user can read it
/// (`systemctl status`), so it holds counts only: no provider name and no upstream text, which
/// `GET /v1/status` shows to the callers allowed to see them. A time, not a countdown: the
/// line is sent when a state changes, not every second.
package enum StatusLine {
  /// Longest line sent; systemctl status shows one line anyway.
  static let maximumLength = 400

  package static func summary(_ statuses: [ProviderStatus], now: Double) -> String {
    let ok = statuses.filter { $0.state == .ok }.count
    var line = "\(ok)/\(statuses.count) providers ok"
    let others = ProviderState.allCases.filter { $0 != .ok }
    var any = false
    for state in others {
      let matching = statuses.filter { $0.state == state }
      guard !matching.isEmpty else { continue }
      any = true
      var part = "\(matching.count) \(state.rawValue)"
      let next = matching.filter { $0.failures > 0 }.compactMap(\.nextRefresh).min()
      if let next { part += " (next attempt \(Timestamp.rfc3339(max(now, next))))" }
      line += "; " + part
    }
    if any { line += "; tokenctl status for details" }
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

  /// How many problems a refused configuration has (their text, which names files, lines and
  /// keys, goes to the journal and the reload answer, not to the world-readable status).
  package static func problems(_ problems: [String]) -> String {
    let n = max(1, problems.count)
    return "\(n) problem\(n == 1 ? "" : "s"); token-brokerd --check-config lists them"
  }

  static func cut(_ line: String) -> String {
    line.count > maximumLength ? String(line.prefix(maximumLength)) + "…" : line
  }
}

import TokenBrokerCore

/// The one-line `STATUS=` summary: `4/5 providers ok; powernaut degraded: upstream 503, retry in 40 s`.
public enum StatusLine {
  public static func summary(_ statuses: [ProviderStatus], now: Double) -> String {
    let ok = statuses.filter { $0.state == .ok }.count
    var line = "\(ok)/\(statuses.count) providers ok"
    for s in statuses where s.state != .ok {
      var part = "\(s.name) \(s.state.rawValue)"
      if let e = s.lastError { part += ": \(e)" }
      if let next = s.nextRefresh, s.failures > 0 { part += ", retry in \(max(0, Int(next - now))) s" }
      line += "; " + part
    }
    return line.count > 400 ? String(line.prefix(400)) + "…" : line
  }
}

import TokenBrokerClient
import TokenBrokerJSON

/// The readable `tokenctl status` table.
enum StatusTable {
  static func render(_ providers: [JSONValue]) -> String {
    var rows: [[String]] = [["PROVIDER", "STATE", "EXPIRES IN", "NEXT REFRESH", "FAILURES", "LAST ERROR"]]
    for p in providers {
      rows.append([
        p["name"]?.string ?? "?",
        p["state"]?.string ?? "?",
        duration(p["expires_in"]?.number),
        p["next_refresh_in"]?.number.map { "in " + duration($0) } ?? "-",
        p["failures"]?.number.map { String(Int($0)) } ?? "0",
        p["last_error"]?.string ?? "-",
      ])
    }
    if providers.isEmpty { return "no providers visible to this user" }
    var widths = [Int](repeating: 0, count: rows[0].count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
      r.enumerated().map { i, c in
        i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count)
      }
      .joined(separator: "  ")
    }.joined(separator: "\n")
  }

  static func duration(_ seconds: Double?) -> String {
    guard let s = seconds.map(Int.init) else { return "-" }
    if s < 0 { return "expired" }
    if s < 120 { return "\(s)s" }
    if s < 7200 { return "\(s / 60)m\(s % 60 == 0 ? "" : "\(s % 60)s")" }
    return "\(s / 3600)h\((s % 3600) / 60)m"
  }
}

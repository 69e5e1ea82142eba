import TokenBrokerClient
import TokenBrokerJSON

/// The readable `tokenctl status` table.
enum StatusTable {
  /// Under `[fleet]` a FLEET column says each shared token's role here and who refreshed it
  /// last (`refresher`, `follower of web-2`), and `store unreachable` when it is.
  static func render(_ providers: [JSONValue]) -> String {
    let fleet = providers.contains { $0["fleet"]?.object != nil }
    var header = ["PROVIDER", "STATE", "EXPIRES IN", "NEXT REFRESH", "FAILURES", "LAST ERROR"]
    if fleet { header.insert("FLEET", at: 5) }
    var rows: [[String]] = [header]
    for p in providers {
      var row = [
        p["name"]?.string ?? "?",
        p["state"]?.string ?? "?",
        duration(p["expires_in"]?.number),
        p["next_refresh_in"]?.number.map { "in " + duration($0) } ?? "-",
        p["failures"]?.number.map { String(Int($0)) } ?? "0",
        p["last_error"]?.string ?? "-",
      ]
      if fleet { row.insert(describeFleet(p["fleet"]), at: 5) }
      rows.append(row)
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

  static func describeFleet(_ f: JSONValue?) -> String {
    guard let f, f.object != nil else { return "local" }
    var text = f["role"]?.string ?? "?"
    if text == "follower", let holder = f["holder"]?.string { text += " of \(holder)" }
    if f["store"]?.string == "unreachable" { text += ", store unreachable" }
    return text
  }

  static func duration(_ seconds: Double?) -> String {
    guard let s = seconds.map(Int.init) else { return "-" }
    if s < 0 { return "expired" }
    if s < 120 { return "\(s)s" }
    if s < 7200 { return "\(s / 60)m\(s % 60 == 0 ? "" : "\(s % 60)s")" }
    return "\(s / 3600)h\((s % 3600) / 60)m"
  }
}

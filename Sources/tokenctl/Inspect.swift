import TokenBrokerClient
import TokenBrokerJSON

#if canImport(Glibc)
  import Glibc
#endif

/// `tokenctl inspect NAME [--scope S] [--json]` (README "tokenctl"): what the token says, never
/// the token. The daemon decodes a JWT (signature dropped) or asks the provider's
/// introspection endpoint; tokenctl lays the answer out, times as UTC and relative to now.
enum Inspect {
  /// Claims holding seconds since the epoch, shown as a time too.
  static let timeClaims: Set<String> = ["exp", "iat", "nbf", "auth_time", "updated_at"]

  static func run(_ socket: String, name: String, scope: String?, json asJSON: Bool) {
    let query = scope.map { "?scope=" + escapePath($0) } ?? ""
    let response = call(socket, "GET", "/v1/token/\(escapePath(name))/info" + query)
    if asJSON {
      out(response.text)
      return
    }
    out(render(json(response), now: Double(time(nil))))
  }

  /// The readable listing: provider and format, then each section's fields one per line.
  static func render(_ info: JSONValue, now: Double) -> String {
    var lines: [String] = []
    lines.append("provider  " + (info["provider"]?.string ?? "?"))
    lines.append("format    " + (info["format"]?.string ?? "?"))
    for section in ["header", "claims", "introspection"] {
      guard let members = info[section]?.object else { continue }
      lines.append(section)
      let width = members.map(\.0.count).max() ?? 0
      for (key, value) in members {
        let padded = key + String(repeating: " ", count: width - key.count)
        lines.append("  \(padded)  \(describe(key, value, now: now))")
      }
    }
    if let message = info["message"]?.string { lines.append("message   " + message) }
    return lines.joined(separator: "\n")
  }

  /// A value as text; a time claim also as UTC and "in N s" / "N s ago".
  static func describe(_ key: String, _ value: JSONValue, now: Double) -> String {
    if timeClaims.contains(key), let seconds = value.number, seconds.isFinite, abs(seconds) < 1e12 {
      let delta = Int(seconds - now)
      let relative = delta >= 0 ? "in \(delta) s" : "\(-delta) s ago"
      return "\(compact(value))  \(utc(Int(seconds)))  (\(relative))"
    }
    if let s = value.string { return s }
    return compact(value)
  }

  /// `2025-01-31 12:00:00 UTC`.
  static func utc(_ seconds: Int) -> String {
    var t = time_t(seconds)
    var parts = tm()
    guard gmtime_r(&t, &parts) != nil else { return "?" }
    var buffer = [CChar](repeating: 0, count: 64)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
    return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Compact JSON text of a value (whole numbers without a fraction).
  static func compact(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let n):
      if n.isFinite, n == n.rounded(), abs(n) < 1e15 { return String(Int(n)) }
      return String(n)
    case .string(let s):
      var bytes: [UInt8] = []
      JSONWriter.appendString(s, to: &bytes)
      return String(decoding: bytes, as: UTF8.self)
    case .array(let items): return "[" + items.map(compact).joined(separator: ",") + "]"
    case .object(let members):
      return "{" + members.map { compact(.string($0.0)) + ":" + compact($0.1) }.joined(separator: ",") + "}"
    }
  }
}

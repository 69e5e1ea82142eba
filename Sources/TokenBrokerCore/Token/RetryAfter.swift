/// `Retry-After`: delta seconds or an HTTP date (RFC 9110 §10.2.3).
package enum RetryAfter {
  /// Seconds from `now` (never negative), or nil when unparseable.
  package static func seconds(_ value: String, now: Double) -> Double? {
    var v = Substring(value)
    while let c = v.first, c == " " || c == "\t" { v.removeFirst() }
    while let c = v.last, c == " " || c == "\t" { v.removeLast() }
    if let n = Int(v) { return n >= 0 ? Double(n) : nil }
    guard let date = HTTPDate.secondsSince1970(v) else { return nil }
    return max(0, date - now)
  }
}

import Foundation

/// `Retry-After`: delta seconds or an HTTP date (RFC 9110 §10.2.3).
public enum RetryAfter {
  /// Seconds from `now` (never negative), or nil when unparseable.
  public static func seconds(_ value: String, now: Double) -> Double? {
    let v = value.trimmingCharacters(in: .whitespaces)
    if let n = Int(v) { return n >= 0 ? Double(n) : nil }
    for format in [
      "EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy",
    ] {
      let f = DateFormatter()
      f.locale = Locale(identifier: "en_US_POSIX")
      f.timeZone = TimeZone(identifier: "GMT")
      f.dateFormat = format
      if let date = f.date(from: v) { return max(0, date.timeIntervalSince1970 - now) }
    }
    return nil
  }
}

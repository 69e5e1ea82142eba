/// HTTP dates (RFC 9110 §5.6.7): the IMF-fixdate every sender must use, and the obsolete
/// RFC 850 and asctime forms a recipient must still accept. Pure and ASCII-only, with no
/// locale or formatter behind it: anything that is not exactly one of the three forms, or
/// names a day that does not exist, is nil.
///
/// Foundation's `DateFormatter` was used here first; fuzzing found that it traps (a fatal
/// range error in Foundation) on some non-ASCII `Retry-After` values, which an upstream
/// could send at will.
package enum HTTPDate {
  /// Seconds since 1970-01-01T00:00:00Z, or nil when `text` is not an HTTP date.
  package static func secondsSince1970(_ text: some StringProtocol) -> Double? {
    let b = Array(text.utf8)
    switch b.count {
    case 29: return imfFixdate(b)
    case 24: return asctime(b)
    case 30...33: return rfc850(b)
    default: return nil
    }
  }

  private static let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
  private static let longDays = [
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
  ]
  private static let months = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
  ]

  /// `Sun, 06 Nov 1994 08:49:37 GMT`
  private static func imfFixdate(_ b: [UInt8]) -> Double? {
    guard days.contains(text(b, 0, 3)), text(b, 3, 5) == ", ", b[7] == UInt8(ascii: " "),
      b[11] == UInt8(ascii: " "), text(b, 25, 29) == " GMT",
      let day = number(b, 5, 7), let month = month(b, 8), let year = number(b, 12, 16)
    else { return nil }
    return instant(year: year, month: month, day: day, b, time: 16)
  }

  /// `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year: 70-99 is 19xx, 00-69 is 20xx)
  private static func rfc850(_ b: [UInt8]) -> Double? {
    guard let comma = b.firstIndex(of: UInt8(ascii: ",")), longDays.contains(text(b, 0, comma)),
      b.count == comma + 24, text(b, comma, comma + 2) == ", ", text(b, comma + 4, comma + 5) == "-",
      text(b, comma + 8, comma + 9) == "-", text(b, comma + 20, comma + 24) == " GMT",
      let day = number(b, comma + 2, comma + 4), let month = month(b, comma + 5),
      let yy = number(b, comma + 9, comma + 11)
    else { return nil }
    return instant(year: yy < 70 ? 2000 + yy : 1900 + yy, month: month, day: day, b, time: comma + 11)
  }

  /// `Sun Nov  6 08:49:37 1994`
  private static func asctime(_ b: [UInt8]) -> Double? {
    guard days.contains(text(b, 0, 3)), b[3] == UInt8(ascii: " "), b[7] == UInt8(ascii: " "),
      b[19] == UInt8(ascii: " "), let month = month(b, 4), let year = number(b, 20, 24)
    else { return nil }
    let day: Int?
    if b[8] == UInt8(ascii: " ") { day = number(b, 9, 10) } else { day = number(b, 8, 10) }
    guard let day else { return nil }
    return instant(year: year, month: month, day: day, b, time: 10)
  }

  /// ` HH:MM:SS` at `time` (the space included) on that day.
  private static func instant(year: Int, month: Int, day: Int, _ b: [UInt8], time: Int) -> Double? {
    guard b[time] == UInt8(ascii: " "), b[time + 3] == UInt8(ascii: ":"), b[time + 6] == UInt8(ascii: ":"),
      let hour = number(b, time + 1, time + 3), let minute = number(b, time + 4, time + 6),
      let second = number(b, time + 7, time + 9),
      hour < 24, minute < 60, second <= 60, day >= 1, day <= daysIn(month: month, year: year)
    else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    return Double(days * 86400 + hour * 3600 + minute * 60 + second)
  }

  private static func text(_ b: [UInt8], _ from: Int, _ to: Int) -> String {
    guard from >= 0, from <= to, to <= b.count else { return "" }
    return String(decoding: b[from..<to], as: UTF8.self)
  }

  /// The decimal number of exactly the digits in `from..<to`.
  private static func number(_ b: [UInt8], _ from: Int, _ to: Int) -> Int? {
    guard from < to, to <= b.count else { return nil }
    var n = 0
    for c in b[from..<to] {
      guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
      n = n * 10 + Int(c - UInt8(ascii: "0"))
    }
    return n
  }

  /// 1-12 for the month name at `at`.
  private static func month(_ b: [UInt8], _ at: Int) -> Int? {
    months.firstIndex(of: text(b, at, at + 3)).map { $0 + 1 }
  }

  private static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let monthFromMarch = (month + 9) % 12
    let dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146097 + dayOfEra - 719468
  }
}

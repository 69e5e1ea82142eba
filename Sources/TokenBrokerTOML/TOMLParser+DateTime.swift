/// RFC 3339 dates and times, as TOML 1.0 allows them. They are checked (month 1-12, day
/// within its month, 24-hour times with seconds) and kept as written.
extension TOMLParser {
  /// `1979-05-27`, `1979-05-27T07:32:00`, `1979-05-27 07:32:00.5Z`, `...+01:00`.
  mutating func parseDateTime() throws(TOMLError) -> TOMLValue.Kind {
    let start = pos
    let year = try fixedDigits(4, at: start)
    try expect(Byte.minus, at: start)
    let month = try fixedDigits(2, at: start)
    try expect(Byte.minus, at: start)
    let day = try fixedDigits(2, at: start)
    guard (1...12).contains(month), (1...Self.days(inMonth: month, year: year)).contains(day) else {
      throw error("invalid date: no such day", at: start)
    }
    let separator = peek()
    let timeFollows =
      separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
      || (separator == Byte.space && Self.isDigit(peek(1)))
    guard timeFollows else {
      try checkEnd(at: start)
      return .localDate(text(from: start))
    }
    pos += 1
    try parseTimeOfDay(at: start)
    switch peek() {
    case UInt8(ascii: "Z"), UInt8(ascii: "z"):
      pos += 1
    case Byte.plus, Byte.minus:
      pos += 1
      let hour = try fixedDigits(2, at: start)
      try expect(Byte.colon, at: start)
      let minute = try fixedDigits(2, at: start)
      guard hour <= 23, minute <= 59 else { throw error("invalid date-time: no such offset", at: start) }
    default:
      try checkEnd(at: start)
      return .localDateTime(text(from: start))
    }
    try checkEnd(at: start)
    return .offsetDateTime(text(from: start))
  }

  /// `07:32:00`, `00:32:00.999999`.
  mutating func parseLocalTime() throws(TOMLError) -> TOMLValue.Kind {
    let start = pos
    try parseTimeOfDay(at: start)
    try checkEnd(at: start)
    return .localTime(text(from: start))
  }

  private mutating func parseTimeOfDay(at start: Int) throws(TOMLError) {
    let hour = try fixedDigits(2, at: start)
    try expect(Byte.colon, at: start)
    let minute = try fixedDigits(2, at: start)
    try expect(Byte.colon, at: start)
    let second = try fixedDigits(2, at: start)
    guard hour <= 23, minute <= 59, second <= 59 else {
      throw error("invalid time: no such time of day", at: start)
    }
    if peek() == Byte.dot {
      pos += 1
      guard Self.isDigit(peek()) else { throw error("invalid time: digits expected after '.'", at: start) }
      while Self.isDigit(peek()) { pos += 1 }
    }
  }

  private func text(from start: Int) -> String {
    String(decoding: bytes[start..<pos], as: UTF8.self)
  }

  /// Nothing that could continue a date or a time may follow one.
  private func checkEnd(at start: Int) throws(TOMLError) {
    if let c = peek(), Self.isWordByte(c) || c == Byte.colon {
      throw error("invalid date-time", at: start)
    }
  }

  private mutating func expect(_ byte: UInt8, at start: Int) throws(TOMLError) {
    guard peek() == byte else { throw error("invalid date-time", at: start) }
    pos += 1
  }

  private mutating func fixedDigits(_ count: Int, at start: Int) throws(TOMLError) -> Int {
    var value = 0
    for _ in 0..<count {
      guard let c = peek(), Self.isDigit(c) else { throw error("invalid date-time", at: start) }
      value = value * 10 + Int(c - UInt8(ascii: "0"))
      pos += 1
    }
    return value
  }

  static func days(inMonth month: Int, year: Int) -> Int {
    switch month {
    case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }
}

/// Integers and floats.
///
/// The whole word (letters, digits, `_ - + .`) is read first, then checked against the
/// grammar, so `123abc` is one invalid number rather than a number and a stray `abc`.
/// Messages never quote the word.
extension TOMLParser {
  /// A number, a date-time, a date or a time, at its first byte.
  mutating func parseNumberOrDateTime() throws(TOMLError) -> TOMLValue.Kind {
    if Self.isDigit(peek()), Self.isDigit(peek(1)) {
      if peek(2) == Byte.colon { return try parseLocalTime() }
      if Self.isDigit(peek(2)), Self.isDigit(peek(3)), peek(4) == Byte.minus { return try parseDateTime() }
    }
    let start = pos
    let word = scanWord()
    return try number(word, at: start)
  }

  static func isDigit(_ c: UInt8?) -> Bool {
    guard let c else { return false }
    return c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
  }

  func number(_ word: ArraySlice<UInt8>, at start: Int) throws(TOMLError) -> TOMLValue.Kind {
    var i = word.startIndex
    var negative = false
    let signed = i < word.endIndex && (word[i] == Byte.plus || word[i] == Byte.minus)
    if signed {
      negative = word[i] == Byte.minus
      i += 1
    }
    let body = word[i...]
    if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
    if body.elementsEqual("nan".utf8) { return .float(negative ? -.nan : .nan) }
    guard let first = body.first, Self.isDigit(first) else {
      throw error(body.isEmpty ? "invalid number" : Self.expectedValue, at: start)
    }

    if body.count >= 2, body.first == UInt8(ascii: "0") {
      let radix: Int64?
      switch body[body.startIndex + 1] {
      case UInt8(ascii: "x"): radix = 16
      case UInt8(ascii: "o"): radix = 8
      case UInt8(ascii: "b"): radix = 2
      default: radix = nil
      }
      if let radix {
        if signed { throw error("a hexadecimal, octal or binary integer cannot have a sign", at: start) }
        let digits = try self.digits(body.dropFirst(2), radix: radix, at: start)
        return .integer(try integer(digits, radix: radix, negative: false, at: start))
      }
    }

    // Decimal: integer part, then an optional fraction and exponent.
    var j = body.startIndex
    func run(_ from: Int) -> Int {
      var k = from
      while k < body.endIndex, Self.isDigit(body[k]) || body[k] == Byte.underscore { k += 1 }
      return k
    }
    let intEnd = run(j)
    let intDigits = try digits(body[j..<intEnd], radix: 10, at: start)
    if intDigits.count > 1, intDigits.first == UInt8(ascii: "0") {
      throw error("leading zeros are not allowed in a number", at: start)
    }
    j = intEnd
    var text = intDigits
    var isFloat = false
    if j < body.endIndex, body[j] == Byte.dot {
      let fracEnd = run(j + 1)
      text.append(Byte.dot)
      text += try digits(body[(j + 1)..<fracEnd], radix: 10, at: start)
      j = fracEnd
      isFloat = true
    }
    if j < body.endIndex, body[j] == UInt8(ascii: "e") || body[j] == UInt8(ascii: "E") {
      text.append(UInt8(ascii: "e"))
      j += 1
      if j < body.endIndex, body[j] == Byte.plus || body[j] == Byte.minus {
        text.append(body[j])
        j += 1
      }
      let expEnd = run(j)
      text += try digits(body[j..<expEnd], radix: 10, at: start)
      j = expEnd
      isFloat = true
    }
    guard j == body.endIndex else { throw error("invalid number", at: start) }
    if isFloat {
      guard let value = Double(String(decoding: text, as: UTF8.self)) else {
        throw error("invalid number", at: start)
      }
      return .float(negative ? -value : value)
    }
    return .integer(try integer(text, radix: 10, negative: negative, at: start))
  }

  /// The digits of `part` without underscores; each `_` must sit between two digits.
  private func digits(_ part: ArraySlice<UInt8>, radix: Int64, at start: Int) throws(TOMLError) -> [UInt8] {
    guard !part.isEmpty else { throw error("invalid number: digits expected", at: start) }
    var out: [UInt8] = []
    var previousWasDigit = false
    for c in part {
      if c == Byte.underscore {
        guard previousWasDigit else {
          throw error("an underscore in a number must stand between two digits", at: start)
        }
        previousWasDigit = false
        continue
      }
      guard let d = Self.hexDigit(c), Int64(d) < radix else { throw error("invalid number", at: start) }
      out.append(c)
      previousWasDigit = true
    }
    guard previousWasDigit else {
      throw error("an underscore in a number must stand between two digits", at: start)
    }
    return out
  }

  /// The value of `digits`, which must fit in 64 bits.
  private func integer(_ digits: [UInt8], radix: Int64, negative: Bool, at start: Int) throws(TOMLError)
    -> Int64
  {
    var value: Int64 = 0
    for c in digits {
      let d = Int64(Self.hexDigit(c) ?? 0)
      let (shifted, o1) = value.multipliedReportingOverflow(by: radix)
      let (next, o2) = negative ? shifted.subtractingReportingOverflow(d) : shifted.addingReportingOverflow(d)
      if o1 || o2 { throw error("the integer does not fit in 64 bits", at: start) }
      value = next
    }
    return value
  }
}

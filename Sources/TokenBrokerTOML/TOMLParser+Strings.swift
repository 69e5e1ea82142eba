/// Basic (`"..."`, `"""..."""`) and literal (`'...'`, `'''...'''`) strings.
///
/// Messages never quote the text: a string may be a secret.
extension TOMLParser {
  static let controlInString =
    "control character in a string; write it as an escape such as \\t or \\u0001"

  /// `"..."`, at the opening quote.
  mutating func parseBasicString() throws(TOMLError) -> String {
    let start = pos
    pos += 1
    var out: [UInt8] = []
    while true {
      guard let c = peek() else { throw error("unterminated string", at: start) }
      switch c {
      case Byte.quote:
        pos += 1
        return String(decoding: out, as: UTF8.self)
      case Byte.backslash:
        try parseEscape(into: &out)
      case Byte.lf, Byte.cr:
        throw error(
          "unterminated string: a basic string ends on its line (use \"\"\" for several lines)", at: start)
      default:
        if Self.isControl(c) { throw error(Self.controlInString) }
        out.append(c)
        pos += 1
      }
    }
  }

  /// `"""..."""`, at the first of the opening quotes.
  mutating func parseMultilineBasicString() throws(TOMLError) -> String {
    let start = pos
    pos += 3
    try skipNewlineAfterOpening()
    var out: [UInt8] = []
    while true {
      guard let c = peek() else { throw error("unterminated multi-line string", at: start) }
      switch c {
      case Byte.quote:
        if try closeMultiline(quote: Byte.quote, into: &out) { return String(decoding: out, as: UTF8.self) }
      case Byte.backslash:
        if try skipLineEndingBackslash() { continue }
        try parseEscape(into: &out)
      case Byte.lf, Byte.cr:
        try consumeNewline()
        out.append(Byte.lf)
      default:
        if Self.isControl(c) { throw error(Self.controlInString) }
        out.append(c)
        pos += 1
      }
    }
  }

  /// `'...'`, at the opening apostrophe: no escapes.
  mutating func parseLiteralString() throws(TOMLError) -> String {
    let start = pos
    pos += 1
    let contentStart = pos
    while true {
      guard let c = peek() else { throw error("unterminated string", at: start) }
      switch c {
      case Byte.apostrophe:
        pos += 1
        return String(decoding: bytes[contentStart..<(pos - 1)], as: UTF8.self)
      case Byte.lf, Byte.cr:
        throw error(
          "unterminated string: a literal string ends on its line (use ''' for several lines)", at: start)
      default:
        if Self.isControl(c) { throw error(Self.controlInString) }
        pos += 1
      }
    }
  }

  /// `'''...'''`, at the first of the opening apostrophes.
  mutating func parseMultilineLiteralString() throws(TOMLError) -> String {
    let start = pos
    pos += 3
    try skipNewlineAfterOpening()
    var out: [UInt8] = []
    while true {
      guard let c = peek() else { throw error("unterminated multi-line string", at: start) }
      switch c {
      case Byte.apostrophe:
        if try closeMultiline(quote: Byte.apostrophe, into: &out) {
          return String(decoding: out, as: UTF8.self)
        }
      case Byte.lf, Byte.cr:
        try consumeNewline()
        out.append(Byte.lf)
      default:
        if Self.isControl(c) { throw error(Self.controlInString) }
        out.append(c)
        pos += 1
      }
    }
  }

  /// A newline right after the opening delimiter is not part of the string.
  private mutating func skipNewlineAfterOpening() throws(TOMLError) {
    if peek() == Byte.lf || peek() == Byte.cr { try consumeNewline() }
  }

  /// At a run of quotes in a multi-line string: three close it, and up to two more just
  /// before them belong to the content. Returns whether the string ended.
  private mutating func closeMultiline(quote: UInt8, into out: inout [UInt8]) throws(TOMLError) -> Bool {
    var run = 0
    while peek(run) == quote { run += 1 }
    if run < 3 {
      out.append(contentsOf: repeatElement(quote, count: run))
      pos += run
      return false
    }
    guard run <= 5 else {
      throw error("more than five quotes in a row in a multi-line string; escape some of them")
    }
    out.append(contentsOf: repeatElement(quote, count: run - 3))
    pos += run
    return true
  }

  /// At `\` in a multi-line basic string: if only blanks follow it on its line, it
  /// swallows the newline and all blanks and newlines after it. Returns whether it did.
  private mutating func skipLineEndingBackslash() throws(TOMLError) -> Bool {
    var i = 1
    while peek(i) == Byte.space || peek(i) == Byte.tab { i += 1 }
    guard peek(i) == Byte.lf || peek(i) == Byte.cr else { return false }
    pos += i
    while let c = peek() {
      switch c {
      case Byte.space, Byte.tab: pos += 1
      case Byte.lf, Byte.cr: try consumeNewline()
      default: return true
      }
    }
    return true
  }

  /// At `\` in a basic string: appends what the escape stands for.
  private mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
    let start = pos
    pos += 1
    let simple: UInt8?
    switch peek() {
    case UInt8(ascii: "b"): simple = 0x08
    case UInt8(ascii: "t"): simple = 0x09
    case UInt8(ascii: "n"): simple = 0x0A
    case UInt8(ascii: "f"): simple = 0x0C
    case UInt8(ascii: "r"): simple = 0x0D
    case Byte.quote: simple = Byte.quote
    case Byte.backslash: simple = Byte.backslash
    case UInt8(ascii: "u"): simple = nil
    case UInt8(ascii: "U"): simple = nil
    default:
      throw error(
        "unknown escape sequence in a string (valid: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)",
        at: start)
    }
    if let simple {
      out.append(simple)
      pos += 1
      return
    }
    let count = peek() == UInt8(ascii: "u") ? 4 : 8
    pos += 1
    var value: UInt32 = 0
    for _ in 0..<count {
      guard let c = peek(), let digit = Self.hexDigit(c) else {
        throw error(
          count == 4
            ? "\\u must be followed by 4 hexadecimal digits" : "\\U must be followed by 8 hexadecimal digits",
          at: start)
      }
      value = value &* 16 &+ UInt32(digit)
      pos += 1
    }
    guard let scalar = Unicode.Scalar(value) else {
      throw error("the escape is not a Unicode scalar value", at: start)
    }
    UTF8.encode(scalar) { out.append($0) }
  }

  static func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
  }
}

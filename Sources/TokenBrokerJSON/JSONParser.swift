/// Why a text is not JSON, and the byte offset where that was found.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
  public enum Reason: Equatable, Sendable {
    /// The text ended inside a value (or was empty).
    case unexpectedEnd
    /// A byte that cannot start or continue a value here.
    case unexpectedByte
    /// A number outside the RFC 8259 grammar (`+1`, `01`, `1.`, `.5`, `0x1`, `NaN`, ...),
    /// or one too large for a Double (`1e400`).
    case invalidNumber
    /// A backslash escape that is not one of `\" \\ \/ \b \f \n \r \t \uXXXX`.
    case invalidEscape
    /// A `\u` escape of a UTF-16 surrogate that is not half of a high-low pair.
    case loneSurrogate
    /// A byte below 0x20 inside a string: it must be written as an escape.
    case controlCharacter
    /// Bytes that are not well-formed UTF-8 (overlong, surrogate, above U+10FFFF, cut short).
    case invalidUTF8
    /// More than `JSONValue.maxDepth` arrays and objects open at once.
    case tooDeep
    /// Something other than whitespace after the value.
    case trailingData
  }

  public var reason: Reason
  public var offset: Int

  public init(_ reason: Reason, at offset: Int) {
    self.reason = reason
    self.offset = offset
  }

  public var description: String { "\(reason) at byte \(offset)" }
}

extension JSONValue {
  /// The most arrays and objects open at once; a deeper text is refused.
  public static let maxDepth = 64

  /// The value of a whole JSON text, nil when it is not one (see `parsing(_:)` for the rules).
  public static func parse(_ bytes: [UInt8]) -> JSONValue? {
    try? parsing(bytes)
  }

  /// Reads a whole JSON text strictly by RFC 8259:
  /// - any value at the top level, surrounded only by space, tab, CR and LF (and a UTF-8
  ///   byte order mark is ignored as the very first bytes, RFC 8259 §8.1);
  /// - numbers by the RFC's grammar only, and finite as a Double;
  /// - strings of well-formed UTF-8 without raw control bytes (below 0x20), with the RFC's
  ///   escapes only; a `\u` surrogate pair becomes one scalar, a lone surrogate is refused
  ///   (never replaced: a token must arrive exactly as sent or not at all);
  /// - at most `maxDepth` nested arrays and objects;
  /// - duplicate object keys are kept in order (lookup finds the last one).
  public static func parsing(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
    var parser = JSONParser(bytes: bytes)
    return try parser.document()
  }
}

struct JSONParser {
  let bytes: [UInt8]
  var i = 0
  var depth = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  static let quote = UInt8(ascii: "\"")
  static let backslash = UInt8(ascii: "\\")

  mutating func document() throws(JSONParseError) -> JSONValue {
    // RFC 8259 §8.1: a reader MAY ignore a byte order mark. Foundation did, and some servers
    // (.NET) send one: skipped once, at the very start only.
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    let v = try value()
    skipWhitespace()
    guard i == bytes.count else { throw JSONParseError(.trailingData, at: i) }
    return v
  }

  mutating func skipWhitespace() {
    while i < bytes.count {
      switch bytes[i] {
      case 0x20, 0x09, 0x0A, 0x0D: i += 1
      default: return
      }
    }
  }

  mutating func value() throws(JSONParseError) -> JSONValue {
    skipWhitespace()
    guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
    switch bytes[i] {
    case UInt8(ascii: "n"): return try literal("null", .null)
    case UInt8(ascii: "t"): return try literal("true", .bool(true))
    case UInt8(ascii: "f"): return try literal("false", .bool(false))
    case Self.quote: return .string(try string())
    case UInt8(ascii: "["): return try array()
    case UInt8(ascii: "{"): return try object()
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
    default: throw JSONParseError(.unexpectedByte, at: i)
    }
  }

  mutating func literal(_ word: StaticString, _ v: JSONValue) throws(JSONParseError) -> JSONValue {
    let count = word.utf8CodeUnitCount
    let start = word.utf8Start
    for k in 0..<count {
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      guard bytes[i] == start[k] else { throw JSONParseError(.unexpectedByte, at: i) }
      i += 1
    }
    return v
  }

  mutating func enter() throws(JSONParseError) {
    guard depth < JSONValue.maxDepth else { throw JSONParseError(.tooDeep, at: i) }
    depth += 1
    i += 1
  }

  mutating func array() throws(JSONParseError) -> JSONValue {
    try enter()
    defer { depth -= 1 }
    var out: [JSONValue] = []
    skipWhitespace()
    if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
      i += 1
      return .array(out)
    }
    while true {
      out.append(try value())
      skipWhitespace()
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      switch bytes[i] {
      case UInt8(ascii: ","): i += 1
      case UInt8(ascii: "]"):
        i += 1
        return .array(out)
      default: throw JSONParseError(.unexpectedByte, at: i)
      }
    }
  }

  mutating func object() throws(JSONParseError) -> JSONValue {
    try enter()
    defer { depth -= 1 }
    var out: [(String, JSONValue)] = []
    skipWhitespace()
    if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
      i += 1
      return .object(out)
    }
    while true {
      skipWhitespace()
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      guard bytes[i] == Self.quote else { throw JSONParseError(.unexpectedByte, at: i) }
      let key = try string()
      skipWhitespace()
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      guard bytes[i] == UInt8(ascii: ":") else { throw JSONParseError(.unexpectedByte, at: i) }
      i += 1
      out.append((key, try value()))
      skipWhitespace()
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      switch bytes[i] {
      case UInt8(ascii: ","): i += 1
      case UInt8(ascii: "}"):
        i += 1
        return .object(out)
      default: throw JSONParseError(.unexpectedByte, at: i)
      }
    }
  }

  // MARK: numbers

  mutating func digits() -> Int {
    let start = i
    while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
    return i - start
  }

  /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, read as a finite Double.
  mutating func number() throws(JSONParseError) -> Double {
    let start = i
    if bytes[i] == UInt8(ascii: "-") { i += 1 }
    guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
    if bytes[i] == UInt8(ascii: "0") {
      i += 1
    } else if digits() == 0 {
      throw JSONParseError(.invalidNumber, at: i)
    }
    if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
      i += 1
      guard digits() > 0 else { throw JSONParseError(.invalidNumber, at: i) }
    }
    if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
      i += 1
      if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
      guard digits() > 0 else { throw JSONParseError(.invalidNumber, at: i) }
    }
    // What may follow a number: whitespace, `,` `]` `}`, or the end. Anything else (`01`,
    // `1x`, `0x10`, `1.2.3`) is a malformed number rather than trailing data.
    if i < bytes.count {
      switch bytes[i] {
      case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"): break
      default: throw JSONParseError(.invalidNumber, at: i)
      }
    }
    guard let n = Double(String(decoding: bytes[start..<i], as: UTF8.self)), n.isFinite else {
      throw JSONParseError(.invalidNumber, at: start)
    }
    return n
  }

  // MARK: strings

  /// The string starting at the opening quote under `i`; `i` ends after the closing quote.
  mutating func string() throws(JSONParseError) -> String {
    i += 1
    let start = i
    // Fast path: no escapes, so the bytes are the string (once checked).
    while i < bytes.count {
      let c = bytes[i]
      if c == Self.quote {
        let s = String(decoding: bytes[start..<i], as: UTF8.self)
        i += 1
        return s
      }
      if c == Self.backslash { break }
      try plainByte(c)
    }
    guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
    var out = Array(bytes[start..<i])
    while i < bytes.count {
      let c = bytes[i]
      if c == Self.quote {
        i += 1
        return String(decoding: out, as: UTF8.self)
      }
      if c == Self.backslash {
        try escape(into: &out)
      } else {
        let from = i
        try plainByte(c)
        out.append(contentsOf: bytes[from..<i])
      }
    }
    throw JSONParseError(.unexpectedEnd, at: i)
  }

  /// Steps over one unescaped character starting with byte `c`: ASCII at or above 0x20, or
  /// one well-formed UTF-8 sequence (Unicode 15, table 3-7).
  mutating func plainByte(_ c: UInt8) throws(JSONParseError) {
    if c < 0x20 { throw JSONParseError(.controlCharacter, at: i) }
    if c < 0x80 {
      i += 1
      return
    }
    let count: Int
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch c {
    case 0xC2...0xDF: count = 1
    case 0xE0:
      count = 2
      low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: count = 2
    case 0xED:
      count = 2
      high = 0x9F
    case 0xF0:
      count = 3
      low = 0x90
    case 0xF1...0xF3: count = 3
    case 0xF4:
      count = 3
      high = 0x8F
    default: throw JSONParseError(.invalidUTF8, at: i)
    }
    guard i + count < bytes.count else { throw JSONParseError(.invalidUTF8, at: i) }
    let second = bytes[i + 1]
    guard second >= low, second <= high else { throw JSONParseError(.invalidUTF8, at: i) }
    var k = 2
    while k <= count {
      guard bytes[i + k] & 0xC0 == 0x80 else { throw JSONParseError(.invalidUTF8, at: i) }
      k += 1
    }
    i += count + 1
  }

  /// One escape starting at the backslash under `i`, appended to `out` as UTF-8.
  mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
    let at = i
    i += 1
    guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
    let e = bytes[i]
    i += 1
    switch e {
    case Self.quote, Self.backslash, UInt8(ascii: "/"): out.append(e)
    case UInt8(ascii: "b"): out.append(0x08)
    case UInt8(ascii: "f"): out.append(0x0C)
    case UInt8(ascii: "n"): out.append(0x0A)
    case UInt8(ascii: "r"): out.append(0x0D)
    case UInt8(ascii: "t"): out.append(0x09)
    case UInt8(ascii: "u"):
      var v = try hex4()
      if (0xDC00..<0xE000).contains(v) { throw JSONParseError(.loneSurrogate, at: at) }
      if (0xD800..<0xDC00).contains(v) {
        // A scalar above U+FFFF is written as a UTF-16 pair of escapes: combine them.
        guard i + 1 < bytes.count, bytes[i] == Self.backslash, bytes[i + 1] == UInt8(ascii: "u") else {
          throw JSONParseError(.loneSurrogate, at: at)
        }
        i += 2
        let lowHalf = try hex4()
        guard (0xDC00..<0xE000).contains(lowHalf) else { throw JSONParseError(.loneSurrogate, at: at) }
        v = 0x10000 + ((v - 0xD800) << 10) + (lowHalf - 0xDC00)
      }
      appendUTF8(Unicode.Scalar(v)!, to: &out)
    default:
      throw JSONParseError(.invalidEscape, at: at)
    }
  }

  mutating func hex4() throws(JSONParseError) -> UInt32 {
    var v: UInt32 = 0
    for _ in 0..<4 {
      guard i < bytes.count else { throw JSONParseError(.unexpectedEnd, at: i) }
      let c = bytes[i]
      let digit: UInt8
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
      default: throw JSONParseError(.invalidEscape, at: i)
      }
      v = v << 4 | UInt32(digit)
      i += 1
    }
    return v
  }

  func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
    let v = scalar.value
    switch v {
    case 0..<0x80: out.append(UInt8(v))
    case 0x80..<0x800:
      out.append(0xC0 | UInt8(v >> 6))
      out.append(0x80 | UInt8(v & 0x3F))
    case 0x800..<0x10000:
      out.append(0xE0 | UInt8(v >> 12))
      out.append(0x80 | UInt8((v >> 6) & 0x3F))
      out.append(0x80 | UInt8(v & 0x3F))
    default:
      out.append(0xF0 | UInt8(v >> 18))
      out.append(0x80 | UInt8((v >> 12) & 0x3F))
      out.append(0x80 | UInt8((v >> 6) & 0x3F))
      out.append(0x80 | UInt8(v & 0x3F))
    }
  }
}

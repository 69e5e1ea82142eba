/// A TOML v1.0.0 parser in Swift: no C, no I/O, no Foundation.
///
/// It never traps on any input: every malformed document, invalid UTF-8 and a NUL byte
/// included, ends in a ``TOMLError`` with a line and a column. Nesting of tables and
/// arrays is capped at ``maxDepth`` levels, so no input can exhaust the stack. Every
/// value and every key records the line where it is written.
package struct TOMLParser {
  /// The deepest nesting of tables and arrays accepted: `a.b.c = 1` is 3 levels,
  /// `a = [[1]]` is 3 too.
  package static let maxDepth = 64

  /// Parses a whole document.
  package static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
    try parse(bytes: Array(text.utf8))
  }

  /// Parses a whole document given as UTF-8; a leading byte order mark is skipped.
  package static func parse(bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
    var parser = TOMLParser(bytes: bytes)
    try parser.validateEncoding()
    return try parser.parseDocument()
  }

  let bytes: [UInt8]
  var pos: Int
  /// 3 after a byte order mark, else 0: where the first line's columns start.
  let textStart: Int
  /// Offsets where each line begins: `lineStarts[0] == 0`.
  let lineStarts: [Int]
  let root: TableBuilder
  /// The table that `key = value` lines go into: the root or the last header's.
  var current: TableBuilder
  var currentPath: [String] = []
  /// Tables made or extended by dotted keys in the current section: once the section
  /// ends they count as defined, so a later `[header]` or dotted key cannot add to them.
  var pendingDefined: [TableBuilder] = []

  private init(bytes: [UInt8]) {
    self.bytes = bytes
    textStart = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    pos = textStart
    var starts = [0]
    for (i, b) in bytes.enumerated() where b == Byte.lf { starts.append(i + 1) }
    lineStarts = starts
    root = TableBuilder(line: 1)
    current = root
  }

  enum Byte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let hash: UInt8 = 0x23
    static let apostrophe: UInt8 = 0x27
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let minus: UInt8 = 0x2D
    static let dot: UInt8 = 0x2E
    static let colon: UInt8 = 0x3A
    static let equals: UInt8 = 0x3D
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let delete: UInt8 = 0x7F
  }

  // MARK: - position and errors

  func peek(_ offset: Int = 0) -> UInt8? {
    pos + offset < bytes.count ? bytes[pos + offset] : nil
  }

  /// The 1-based line of byte `offset`.
  func line(at offset: Int) -> Int {
    var low = 0
    var high = lineStarts.count
    while high - low > 1 {
      let mid = (low + high) / 2
      if lineStarts[mid] <= offset { low = mid } else { high = mid }
    }
    return low + 1
  }

  /// An error at byte `offset` (by default the current position).
  func error(_ message: String, at offset: Int? = nil) -> TOMLError {
    let offset = min(offset ?? pos, bytes.count)
    let line = line(at: offset)
    let start = max(lineStarts[line - 1], min(textStart, offset))
    let column = bytes[start..<offset].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
    return TOMLError(line: line, column: column, message: message)
  }

  static func isBareKeyByte(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), Byte.underscore, Byte.minus:
      return true
    default:
      return false
    }
  }

  /// Control characters that may appear nowhere but as escapes (tab is allowed).
  static func isControl(_ c: UInt8) -> Bool {
    (c < 0x20 && c != Byte.tab) || c == Byte.delete
  }

  // MARK: - whitespace, comments, newlines

  mutating func skipWhitespace() {
    while let c = peek(), c == Byte.space || c == Byte.tab { pos += 1 }
  }

  /// Consumes LF or CRLF; a carriage return alone is an error.
  mutating func consumeNewline() throws(TOMLError) {
    if peek() == Byte.cr {
      guard peek(1) == Byte.lf else {
        throw error("a carriage return must be followed by a line feed")
      }
      pos += 1
    }
    pos += 1
  }

  /// From `#` to the end of the line, not consuming the newline.
  mutating func skipComment() throws(TOMLError) {
    pos += 1
    while let c = peek(), c != Byte.lf {
      if c == Byte.cr, peek(1) == Byte.lf { return }
      if Self.isControl(c) { throw error("control character in a comment") }
      pos += 1
    }
  }

  /// Whitespace, comments and newlines, as allowed between the elements of an array.
  mutating func skipWhitespaceCommentsAndNewlines() throws(TOMLError) {
    while let c = peek() {
      switch c {
      case Byte.space, Byte.tab: pos += 1
      case Byte.hash: try skipComment()
      case Byte.lf, Byte.cr: try consumeNewline()
      default: return
      }
    }
  }

  /// After a value or a header: blanks, an optional comment, then a newline or the end.
  mutating func expectLineEnd(after what: String) throws(TOMLError) {
    skipWhitespace()
    if peek() == Byte.hash { try skipComment() }
    guard let c = peek() else { return }
    guard c == Byte.lf || c == Byte.cr else {
      throw error("expected the end of the line after \(what)")
    }
    try consumeNewline()
  }

  // MARK: - document

  mutating func parseDocument() throws(TOMLError) -> TOMLTable {
    while true {
      skipWhitespace()
      guard let c = peek() else { break }
      switch c {
      case Byte.hash:
        try skipComment()
      case Byte.lf, Byte.cr:
        try consumeNewline()
      case Byte.openBracket:
        try parseHeader()
        try expectLineEnd(after: "the table header")
      default:
        try parseKeyValue(into: current, path: currentPath, level: currentPath.count, inline: false)
        try expectLineEnd(after: "the value")
      }
    }
    return root.freeze()
  }

  // MARK: - keys

  /// A dotted key: simple keys separated by `.`, blanks allowed around the dots.
  mutating func parseKey() throws(TOMLError) -> [String] {
    var parts: [String] = []
    while true {
      skipWhitespace()
      if parts.count == Self.maxDepth {
        throw error("the key has more than \(Self.maxDepth) parts")
      }
      parts.append(try parseSimpleKey())
      skipWhitespace()
      guard peek() == Byte.dot else { return parts }
      pos += 1
    }
  }

  mutating func parseSimpleKey() throws(TOMLError) -> String {
    switch peek() {
    case Byte.quote:
      if peek(1) == Byte.quote, peek(2) == Byte.quote {
        throw error("a key cannot be a multi-line string")
      }
      return try parseBasicString()
    case Byte.apostrophe:
      if peek(1) == Byte.apostrophe, peek(2) == Byte.apostrophe {
        throw error("a key cannot be a multi-line string")
      }
      return try parseLiteralString()
    case nil, Byte.lf, Byte.cr, Byte.hash:
      throw error("expected a key")
    default:
      let start = pos
      while let c = peek(), Self.isBareKeyByte(c) { pos += 1 }
      guard pos > start else {
        throw error(
          "expected a key: a bare key may hold only A-Z, a-z, 0-9, '_' and '-' (put other keys in quotes)")
      }
      return String(decoding: bytes[start..<pos], as: UTF8.self)
    }
  }

  /// `key = value`, added to `table` (whose path is `path`, at nesting `level`).
  mutating func parseKeyValue(
    into table: TableBuilder, path: [String], level: Int, inline: Bool
  ) throws(TOMLError) {
    let keyStart = pos
    let key = try parseKey()
    let keyLine = line(at: keyStart)
    guard peek() == Byte.equals else {
      guard QuotableKey.isQuotable(key) else {
        // Most likely a secret pasted on a line of its own: never quote it.
        throw error(
          "a line that is not key = value: expected '=' after a \(QuotableKey.size(key)) (not shown; "
            + "is a secret pasted on a line of its own?)")
      }
      throw error("expected '=' after key '\(TOMLError.display(key))'")
    }
    pos += 1
    skipWhitespace()
    switch peek() {
    case nil, Byte.lf, Byte.cr, Byte.hash:
      throw error("expected a value after '=' on the same line")
    default:
      break
    }
    let valueLevel = level + key.count
    guard valueLevel <= Self.maxDepth else { throw nestingError(at: keyStart) }
    let value = try parseValue(path: path + key, level: valueLevel)
    try define(key, as: value, in: table, path: path, line: keyLine, at: keyStart, inline: inline)
  }

  func nestingError(at offset: Int? = nil) -> TOMLError {
    error("tables and arrays are nested more than \(Self.maxDepth) levels deep", at: offset)
  }
}

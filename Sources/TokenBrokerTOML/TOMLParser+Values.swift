/// Values: dispatch on the first byte, arrays, inline tables, booleans.
extension TOMLParser {
  static let expectedValue =
    "expected a value (a string, number, boolean, date-time, array or inline table)"

  /// One value, at its first byte; `path` names it in messages, `level` is its nesting.
  mutating func parseValue(path: [String], level: Int) throws(TOMLError) -> TOMLValue {
    let start = pos
    let line = line(at: start)
    guard let c = peek() else { throw error(Self.expectedValue) }
    switch c {
    case Byte.quote:
      let multiline = peek(1) == Byte.quote && peek(2) == Byte.quote
      let text = multiline ? try parseMultilineBasicString() : try parseBasicString()
      return TOMLValue(.string(text), line: line)
    case Byte.apostrophe:
      let multiline = peek(1) == Byte.apostrophe && peek(2) == Byte.apostrophe
      let text = multiline ? try parseMultilineLiteralString() : try parseLiteralString()
      return TOMLValue(.string(text), line: line)
    case Byte.openBracket:
      return try parseArray(path: path, level: level)
    case Byte.openBrace:
      return try parseInlineTable(path: path, level: level)
    case UInt8(ascii: "t"), UInt8(ascii: "f"):
      let word = scanWord()
      if word.elementsEqual("true".utf8) { return TOMLValue(.boolean(true), line: line) }
      if word.elementsEqual("false".utf8) { return TOMLValue(.boolean(false), line: line) }
      throw error(Self.expectedValue, at: start)
    case UInt8(ascii: "0")...UInt8(ascii: "9"), Byte.plus, Byte.minus, UInt8(ascii: "i"), UInt8(ascii: "n"):
      return TOMLValue(try parseNumberOrDateTime(), line: line)
    default:
      throw error(Self.expectedValue)
    }
  }

  static func isWordByte(_ c: UInt8) -> Bool {
    isBareKeyByte(c) || c == Byte.plus || c == Byte.dot
  }

  /// Letters, digits, `_ - + .`: a number or a boolean as written, consumed.
  mutating func scanWord() -> ArraySlice<UInt8> {
    let start = pos
    while let c = peek(), Self.isWordByte(c) { pos += 1 }
    return bytes[start..<pos]
  }

  /// `[ value, value, ]`, at `[`: newlines and comments may come between elements.
  mutating func parseArray(path: [String], level: Int) throws(TOMLError) -> TOMLValue {
    let start = pos
    let line = line(at: start)
    guard level <= Self.maxDepth else { throw nestingError() }
    pos += 1
    var elements: [TOMLValue] = []
    while true {
      try skipWhitespaceCommentsAndNewlines()
      guard let c = peek() else { throw error("unterminated array (opened at line \(line)): expected ']'") }
      if c == Byte.closeBracket {
        pos += 1
        break
      }
      if c == Byte.comma || c == Byte.closeBrace {
        throw error("expected a value or ']' in the array")
      }
      elements.append(try parseValue(path: path, level: level + 1))
      try skipWhitespaceCommentsAndNewlines()
      guard let next = peek() else {
        throw error("unterminated array (opened at line \(line)): expected ']'")
      }
      if next == Byte.comma {
        pos += 1
      } else if next == Byte.closeBracket {
        pos += 1
        break
      } else {
        throw error("expected ',' or ']' after an element of the array")
      }
    }
    return TOMLValue(.array(elements), line: line)
  }

  /// `{ key = value, key = value }`, at `{`: one line, no trailing comma.
  mutating func parseInlineTable(path: [String], level: Int) throws(TOMLError) -> TOMLValue {
    let start = pos
    let line = line(at: start)
    guard level <= Self.maxDepth else { throw nestingError() }
    pos += 1
    let table = TableBuilder(line: line)
    skipWhitespace()
    if peek() == Byte.closeBrace {
      pos += 1
      return TOMLValue(.table(table.freeze()), line: line)
    }
    while true {
      skipWhitespace()
      switch peek() {
      case nil, Byte.lf, Byte.cr:
        throw error("unterminated inline table: it must close with '}' on the same line")
      case Byte.closeBrace:
        throw error("a trailing comma is not allowed in an inline table")
      default:
        break
      }
      try parseKeyValue(into: table, path: path, level: level, inline: true)
      skipWhitespace()
      switch peek() {
      case Byte.comma:
        pos += 1
      case Byte.closeBrace:
        pos += 1
        return TOMLValue(.table(table.freeze()), line: line)
      case nil, Byte.lf, Byte.cr:
        throw error("unterminated inline table: it must close with '}' on the same line")
      default:
        throw error("expected ',' or '}' after a value in the inline table")
      }
    }
  }
}

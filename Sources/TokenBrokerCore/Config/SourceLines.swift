/// Maps key paths of a TOML document to the 1-based line where they are written.
///
/// TOMLKit's decoded values carry no positions, so this scans the source text again:
/// table headers (`[a.b]`, `[a."b"]`, `[[a]]`), `key = value` lines, dotted keys and
/// inline tables (`k = { file = "..." }`); the elements of an array are located too,
/// so a bad entry of a multi-line list points at its own line. The text is expected
/// to be valid TOML (it is scanned only after TOMLKit accepted it); on anything else
/// the scanner still terminates, merely knowing fewer lines.
struct ConfigSourceLines {
  private var keys: [[String]: Int] = [:]
  private var elements: [Element: Int] = [:]

  private struct Element: Hashable {
    var path: [String]
    var index: Int
  }

  init(_ text: String) {
    var scanner = Scanner(bytes: Array(text.utf8))
    scanner.scanDocument()
    keys = scanner.keys
    for element in scanner.elements {
      elements[Element(path: element.path, index: element.index)] = element.line
    }
  }

  /// The line of `path`, or of its nearest ancestor that has one (a missing key is
  /// reported at its table's header); 0 when nothing is known.
  func line(of path: [String]) -> Int {
    var path = path
    while !path.isEmpty {
      if let line = keys[path] { return line }
      path.removeLast()
    }
    return 0
  }

  /// The line of element `index` of the array at `path`, else the array's own line.
  func line(of path: [String], element index: Int) -> Int {
    elements[Element(path: path, index: index)] ?? line(of: path)
  }

  /// Whether `path` itself (not only an ancestor) was seen in the text.
  func contains(_ path: [String]) -> Bool { keys[path] != nil }
}

extension ConfigSourceLines {
  fileprivate struct Scanner {
    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var keys: [[String]: Int] = [:]
    var elements: [(path: [String], index: Int, line: Int)] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { pos >= bytes.count }
    var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    func peek(_ offset: Int) -> UInt8? {
      pos + offset < bytes.count ? bytes[pos + offset] : nil
    }

    mutating func advance() {
      if pos < bytes.count {
        if bytes[pos] == UInt8(ascii: "\n") { line += 1 }
        pos += 1
      }
    }

    /// Records `path` and its ancestors at `line`, keeping the first line seen.
    mutating func record(_ path: [String], at line: Int) {
      var path = path
      while !path.isEmpty {
        if keys[path] == nil { keys[path] = line }
        path.removeLast()
      }
    }

    // MARK: - whitespace and comments

    mutating func skipBlanks() {
      while let c = current, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") {
        advance()
      }
    }

    mutating func skipComment() {
      guard current == UInt8(ascii: "#") else { return }
      while let c = current, c != UInt8(ascii: "\n") { advance() }
    }

    /// Blanks, comments and newlines.
    mutating func skipTrivia() {
      while true {
        let start = pos
        skipBlanks()
        skipComment()
        if current == UInt8(ascii: "\n") { advance() }
        if pos == start { return }
      }
    }

    mutating func skipToEndOfLine() {
      while let c = current, c != UInt8(ascii: "\n") { advance() }
    }

    // MARK: - document

    mutating func scanDocument() {
      var table: [String] = []
      while true {
        skipTrivia()
        guard let c = current else { return }
        let start = pos
        if c == UInt8(ascii: "[") {
          let headerLine = line
          advance()
          let isArray = current == UInt8(ascii: "[")
          if isArray { advance() }
          table = scanKey()
          skipBlanks()
          if current == UInt8(ascii: "]") { advance() }
          if isArray, current == UInt8(ascii: "]") { advance() }
          record(table, at: headerLine)
          skipBlanks()
          skipComment()
        } else {
          scanKeyValue(in: table)
        }
        if pos == start { skipToEndOfLine() }
      }
    }

    mutating func scanKeyValue(in table: [String]) {
      let keyLine = line
      let key = scanKey()
      skipBlanks()
      guard !key.isEmpty, current == UInt8(ascii: "=") else {
        skipToEndOfLine()
        return
      }
      advance()
      record(table + key, at: keyLine)
      scanValue(at: table + key)
      skipBlanks()
      skipComment()
    }

    // MARK: - keys

    /// A dotted key: simple keys separated by `.`, blanks allowed around the dots.
    mutating func scanKey() -> [String] {
      var parts: [String] = []
      while true {
        skipBlanks()
        guard let part = scanSimpleKey() else { return parts }
        parts.append(part)
        skipBlanks()
        guard current == UInt8(ascii: ".") else { return parts }
        advance()
      }
    }

    mutating func scanSimpleKey() -> String? {
      guard let c = current else { return nil }
      if c == UInt8(ascii: "\"") {
        advance()
        return scanBasicString(multiline: false)
      }
      if c == UInt8(ascii: "'") {
        advance()
        return scanLiteralString(multiline: false)
      }
      let start = pos
      while let c = current, Self.isBareKeyByte(c) { advance() }
      return pos > start ? String(decoding: bytes[start..<pos], as: UTF8.self) : nil
    }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
      switch c {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
        return true
      default:
        return false
      }
    }

    // MARK: - values

    /// Scans one value; `path` names it, or is nil inside arrays (whose inline
    /// tables are not indexed).
    mutating func scanValue(at path: [String]?) {
      skipBlanks()
      guard let c = current else { return }
      switch c {
      case UInt8(ascii: "\""), UInt8(ascii: "'"):
        let multiline = peek(1) == c && peek(2) == c
        advance()
        if multiline {
          advance()
          advance()
        }
        if c == UInt8(ascii: "\"") {
          _ = scanBasicString(multiline: multiline)
        } else {
          _ = scanLiteralString(multiline: multiline)
        }
      case UInt8(ascii: "["):
        advance()
        scanArray(at: path)
      case UInt8(ascii: "{"):
        advance()
        scanInlineTable(at: path)
      default:
        // Numbers, booleans, dates and times (which may hold one space).
        while let c = current,
          c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "}"),
          c != UInt8(ascii: "#"), c != UInt8(ascii: "\n")
        {
          advance()
        }
      }
    }

    mutating func scanArray(at path: [String]?) {
      var index = 0
      while true {
        skipTrivia()
        guard let c = current else { return }
        if c == UInt8(ascii: "]") {
          advance()
          return
        }
        if c == UInt8(ascii: ",") {
          advance()
          continue
        }
        let start = pos
        if let path { elements.append((path, index, line)) }
        scanValue(at: nil)
        index += 1
        if pos == start { advance() }
      }
    }

    mutating func scanInlineTable(at path: [String]?) {
      while true {
        skipTrivia()
        guard let c = current else { return }
        if c == UInt8(ascii: "}") {
          advance()
          return
        }
        if c == UInt8(ascii: ",") {
          advance()
          continue
        }
        let start = pos
        let keyLine = line
        let key = scanKey()
        skipBlanks()
        if !key.isEmpty, current == UInt8(ascii: "=") {
          advance()
          if let path { record(path + key, at: keyLine) }
          scanValue(at: path.map { $0 + key })
        }
        if pos == start { advance() }
      }
    }

    // MARK: - strings

    /// After the opening quote(s); returns the decoded text and consumes the closing quote(s).
    mutating func scanBasicString(multiline: Bool) -> String {
      var out: [UInt8] = []
      while let c = current {
        if c == UInt8(ascii: "\"") {
          if !multiline {
            advance()
            break
          }
          if peek(1) == c, peek(2) == c {
            // Up to two more quotes may belong to the content: `""""` ends with one quote.
            var quotes = 0
            while current == UInt8(ascii: "\"") {
              quotes += 1
              advance()
            }
            out.append(contentsOf: [UInt8](repeating: c, count: max(0, quotes - 3)))
            break
          }
          out.append(c)
          advance()
        } else if c == UInt8(ascii: "\\") {
          advance()
          scanEscape(into: &out, multiline: multiline)
        } else if c == UInt8(ascii: "\n"), !multiline {
          break
        } else {
          out.append(c)
          advance()
        }
      }
      return String(decoding: out, as: UTF8.self)
    }

    mutating func scanEscape(into out: inout [UInt8], multiline: Bool) {
      guard let c = current else { return }
      let simple: [UInt8: UInt8] = [
        UInt8(ascii: "b"): 8, UInt8(ascii: "t"): 9, UInt8(ascii: "n"): 10, UInt8(ascii: "f"): 12,
        UInt8(ascii: "r"): 13, UInt8(ascii: "e"): 27, UInt8(ascii: "\""): 34, UInt8(ascii: "\\"): 92,
      ]
      if let byte = simple[c] {
        out.append(byte)
        advance()
      } else if c == UInt8(ascii: "u") || c == UInt8(ascii: "U") || c == UInt8(ascii: "x") {
        let count = c == UInt8(ascii: "u") ? 4 : c == UInt8(ascii: "U") ? 8 : 2
        advance()
        var value: UInt32 = 0
        for _ in 0..<count {
          guard let h = current, let digit = Self.hexValue(h) else { break }
          value = value * 16 + digit
          advance()
        }
        if let scalar = Unicode.Scalar(value) { out.append(contentsOf: Array(String(scalar).utf8)) }
      } else if multiline {
        // A line-ending backslash trims the newline and the whitespace after it.
        while let w = current,
          w == UInt8(ascii: " ") || w == UInt8(ascii: "\t") || w == UInt8(ascii: "\r")
            || w == UInt8(ascii: "\n")
        {
          advance()
        }
      } else {
        advance()
      }
    }

    static func hexValue(_ c: UInt8) -> UInt32? {
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
      default: return nil
      }
    }

    /// After the opening quote(s); literal strings have no escapes.
    mutating func scanLiteralString(multiline: Bool) -> String {
      var out: [UInt8] = []
      while let c = current {
        if c == UInt8(ascii: "'") {
          if !multiline {
            advance()
            break
          }
          if peek(1) == c, peek(2) == c {
            var quotes = 0
            while current == UInt8(ascii: "'") {
              quotes += 1
              advance()
            }
            out.append(contentsOf: [UInt8](repeating: c, count: max(0, quotes - 3)))
            break
          }
        } else if c == UInt8(ascii: "\n"), !multiline {
          break
        }
        out.append(c)
        advance()
      }
      return String(decoding: out, as: UTF8.self)
    }
  }
}

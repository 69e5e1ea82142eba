/// Why a document is not valid TOML, and where.
///
/// The message names keys but never quotes a value, so it is safe to show for a file
/// that holds secrets.
package struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
  /// 1-based line.
  package var line: Int
  /// 1-based column, counted in Unicode scalars.
  package var column: Int
  package var message: String

  package init(line: Int, column: Int, message: String) {
    self.line = line
    self.column = column
    self.message = message
  }

  /// `line 3, column 12: expected '=' after key 'token_url'`.
  package var description: String { "line \(line), column \(column): \(message)" }
}

extension TOMLError {
  /// `a.b`, `a."b c"`: a key path as it could be written in TOML, for messages.
  static func display(_ path: [String]) -> String {
    path.map { part in
      let bare =
        !part.isEmpty
        && part.utf8.allSatisfy { TOMLParser.isBareKeyByte($0) }
      if bare { return part }
      var quoted = "\""
      for s in part.unicodeScalars {
        switch s {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        case _ where s.value < 0x20 || s.value == 0x7F:
          let hex = String(s.value, radix: 16, uppercase: true)
          quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: quoted.unicodeScalars.append(s)
        }
      }
      return quoted + "\""
    }.joined(separator: ".")
  }
}

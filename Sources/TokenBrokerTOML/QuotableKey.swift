/// Whether a key read from the file may be quoted in a problem.
///
/// A secret pasted on a line of its own (a wrapped base64url or JWT line, a `.env` paste)
/// is made of bare-key characters, so the TOML parser and the unknown-key check see it
/// as a key. Problems reach stderr, the journal, the reload 400 body and the
/// world-readable `STATUS=` line, so a key is quoted only when it is short and does not
/// look like a secret; otherwise the message gives its length.
package enum QuotableKey {
  /// Longest key (all dotted parts together, as displayed) that is quoted.
  package static let maxCharacters = 32
  /// From this length on, a key that mixes upper-case, lower-case and digits is not quoted.
  package static let mixedCaseDigitsMinimum = 12

  /// Whether the key path `parts` (as `display` would join them) may be quoted.
  package static func isQuotable(_ parts: [String]) -> Bool {
    let total = parts.reduce(max(0, parts.count - 1)) { $0 + $1.unicodeScalars.count }
    return total <= maxCharacters && !parts.contains(where: looksLikeSecret)
  }

  package static func isQuotable(_ key: String) -> Bool { isQuotable([key]) }

  /// 12 or more characters mixing upper-case letters, lower-case letters and digits: the
  /// shape of random tokens, not of the snake_case keys a config file holds.
  package static func looksLikeSecret(_ part: String) -> Bool {
    guard part.unicodeScalars.count >= mixedCaseDigitsMinimum else { return false }
    var upper = false
    var lower = false
    var digit = false
    for b in part.utf8 {
      switch b {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): upper = true
      case UInt8(ascii: "a")...UInt8(ascii: "z"): lower = true
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = true
      default: break
      }
    }
    return upper && lower && digit
  }

  /// `key of 60 characters`, for a key that is not quoted.
  package static func size(_ parts: [String]) -> String {
    let total = parts.reduce(max(0, parts.count - 1)) { $0 + $1.unicodeScalars.count }
    return "key of \(total) character\(total == 1 ? "" : "s")"
  }
}

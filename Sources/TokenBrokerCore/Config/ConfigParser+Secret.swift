import TokenBrokerTOML

/// Secrets: `client_secret`, `password`, `refresh_token`, `api_key`.
///
/// A secret is a literal string or a table with exactly one of `file` (an absolute
/// path), `env` (an environment variable's name) or `credential` (a file name in
/// systemd's `$CREDENTIALS_DIRECTORY`). Messages name the key, never the value.
extension ConfigReader {
  static let secretSourceKeys = ["file", "env", "credential"]

  mutating func secret(_ value: TOMLValue, at key: [String]) -> SecretSource? {
    if let literal = value.string {
      guard !literal.isEmpty else {
        report(key, "the secret is empty")
        return nil
      }
      if let mode = fileMode, mode & 0o077 != 0 {
        report(
          key,
          "a literal secret in a file readable by group or others (mode \(Self.octalMode(mode))); "
            + "chmod 600 the file or use { file = ... } / { credential = ... }")
        return nil
      }
      return .literal(literal)
    }
    guard let table = value.table else {
      report(
        key,
        "expected a string or a table like { file = \"/etc/token-broker/secrets/NAME\" }, "
          + "found \(Self.describe(value))")
      return nil
    }
    checkKeys(table, at: key, known: Self.secretSourceKeys)
    let given = Self.secretSourceKeys.filter { table[$0] != nil }
    guard given.count == 1, let kind = given.first, let entry = table[kind] else {
      let found = given.isEmpty ? "" : "; found " + given.joined(separator: " and ")
      report(key, "expected exactly one of file, env or credential" + found)
      return nil
    }
    let entryKey = key + [kind]
    guard let text = entry.string else {
      wrongType(entryKey, expected: "a string", found: entry)
      return nil
    }
    guard !text.isEmpty else {
      report(entryKey, "must not be empty")
      return nil
    }
    switch kind {
    case "file":
      guard text.hasPrefix("/"), !text.hasSuffix("/"), !text.unicodeScalars.contains("\0") else {
        report(entryKey, "must be the absolute path of a file (starting with '/')")
        return nil
      }
      return .file(text)
    case "env":
      guard Self.isEnvironmentName(text) else {
        report(
          entryKey,
          "must be an environment variable name (letters, digits and '_', not starting with a digit)")
        return nil
      }
      return .env(text)
    default:
      guard Self.isCredentialName(text) else {
        report(entryKey, "must be a plain file name in $CREDENTIALS_DIRECTORY (no '/'), e.g. \"NAME-secret\"")
        return nil
      }
      return .credential(text)
    }
  }

  /// `0644` for `0o100644`.
  static func octalMode(_ mode: UInt32) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
  }

  static func isEnvironmentName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
    return name.unicodeScalars.allSatisfy { s in
      ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s) || s == "_"
    }
  }

  static func isCredentialName(_ name: String) -> Bool {
    name != "." && name != ".." && name.utf8.count <= 255
      && !name.unicodeScalars.contains { $0 == "/" || $0.value < 0x20 || $0.value == 0x7F }
  }
}

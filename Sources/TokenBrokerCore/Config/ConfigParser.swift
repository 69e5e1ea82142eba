import TokenBrokerTOML

/// Turns the text of `broker.toml` into a validated ``BrokerConfig``.
///
/// The parser does no I/O: the caller reads the file (and its mode) and hands over
/// the text. Every problem is collected, each with the line of the offending key or
/// of its table's header, before one ``ConfigError`` is thrown. No message ever
/// holds the value of a secret.
package enum ConfigParser {
  /// Parses and validates a configuration.
  ///
  /// - Parameters:
  ///   - text: the whole TOML document.
  ///   - path: the file's path as given, used in every problem.
  ///   - fileMode: the file's `st_mode` permission bits if known; when group or others
  ///     may read the file (`fileMode & 0o077 != 0`), literal secrets are refused.
  /// - Throws: ``ConfigError`` with every problem found, sorted by line.
  package static func parse(
    _ text: String, path: String, fileMode: UInt32? = nil
  ) throws(ConfigError) -> BrokerConfig {
    // Checked here too so that the message stays the one users know (no column).
    if let nul = text.utf8.firstIndex(of: 0) {
      let line = text.utf8[..<nul].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
      throw ConfigError(problems: [
        ConfigProblem(path: path, line: line, message: "TOML syntax error: the file contains a NUL byte")
      ])
    }
    let root: TOMLTable
    do {
      root = try TOMLParser.parse(text)
    } catch {
      // TOMLError messages name keys but never quote values, so nothing is redacted.
      let message = "TOML syntax error at column \(error.column): \(error.message)"
      throw ConfigError(problems: [ConfigProblem(path: path, line: error.line, message: message)])
    }

    var reader = ConfigReader(path: path, fileMode: fileMode, lines: ConfigSourceLines(root))
    reader.checkKeys(root, at: [], known: ["broker", "providers", "fleet"])

    var broker = BrokerSettings()
    if let value = root["broker"] {
      if let table = reader.table(value, at: ["broker"]) {
        broker = reader.parseBroker(table)
      }
    }

    var providers: [ProviderConfig] = []
    if let value = root["providers"], let table = reader.table(value, at: ["providers"]) {
      for name in table.keys.sorted() {
        guard let value = table[name] else { continue }
        let key = ["providers", name]
        let nameIsValid = ConfigReader.isValidProviderName(name)
        if !nameIsValid {
          reader.report(
            key,
            "invalid provider name; use 1 to 64 characters of a-z, 0-9, '_' and '-', "
              + "starting with a letter or a digit")
        }
        guard let providerTable = reader.table(value, at: key) else { continue }
        if let provider = reader.parseProvider(providerTable, name: name), nameIsValid {
          providers.append(provider)
        }
      }
    }

    var fleet: FleetSettings?
    if let value = root["fleet"], let table = reader.table(value, at: ["fleet"]) {
      fleet = reader.parseFleet(table, requestTimeout: broker.requestTimeout)
    }

    guard reader.problems.isEmpty else { throw ConfigError(problems: reader.problems) }
    return BrokerConfig(broker: broker, providers: providers, fleet: fleet)
  }
}

/// Collects problems while reading typed values out of the TOML tree.
struct ConfigReader {
  let path: String
  let fileMode: UInt32?
  let lines: ConfigSourceLines
  var problems: [ConfigProblem] = []

  init(path: String, fileMode: UInt32?, lines: ConfigSourceLines) {
    self.path = path
    self.fileMode = fileMode
    self.lines = lines
  }

  /// Reports `message` about `key`, at `line` or else at the key's (or its table's) line.
  mutating func report(_ key: [String], line: Int? = nil, _ message: String) {
    let prefix = key.isEmpty ? "" : Self.display(key) + ": "
    problems.append(
      ConfigProblem(path: path, line: line ?? lines.line(of: key), message: prefix + message))
  }

  /// `providers.energy.client_secret`; components that are not bare keys are quoted.
  static func display(_ key: [String]) -> String {
    key.map { part in
      let bare =
        !part.isEmpty
        && part.unicodeScalars.allSatisfy { s in
          s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "_" || s == "-")
        }
      if bare { return part }
      var quoted = "\""
      for s in part.unicodeScalars {
        switch s {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        case _ where s.value < 0x20 || s.value == 0x7F: quoted += "\\u" + Self.hex4(s.value)
        default: quoted.unicodeScalars.append(s)
        }
      }
      return quoted + "\""
    }.joined(separator: ".")
  }

  private static func hex4(_ v: UInt32) -> String {
    let digits = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
  }

  /// "a string", "an integer", ...: how a found value is named in messages.
  static func describe(_ value: TOMLValue) -> String {
    switch value.kind {
    case .string: return "a string"
    case .integer: return "an integer"
    case .float: return "a floating-point number"
    case .boolean: return "a boolean"
    case .table: return "a table"
    case .array: return "an array"
    case .localDate: return "a date"
    case .localTime: return "a time"
    case .localDateTime, .offsetDateTime: return "a date-time"
    }
  }

  mutating func wrongType(_ key: [String], expected: String, found value: TOMLValue) {
    report(key, "expected \(expected), found \(Self.describe(value))")
  }

  /// Reports every key of `table` that is not in `known`, with a did-you-mean.
  mutating func checkKeys(_ table: TOMLTable, at base: [String], known: [String]) {
    for key in table.keys.sorted() where !known.contains(key) {
      guard QuotableKey.isQuotable(key) else {
        // Long or token-shaped: perhaps a pasted secret, so only its size is said.
        report(
          base, line: lines.line(of: base + [key]),
          "an unknown \(QuotableKey.size([key])) (not shown: too long or shaped like a secret)")
        continue
      }
      report(base + [key], "unknown key" + ConfigDidYouMean.hint(for: key, among: known))
    }
  }

  static func isValidProviderName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...64).contains(bytes.count) else { return false }
    for (i, b) in bytes.enumerated() {
      let alnum =
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
      if alnum { continue }
      if i > 0, b == UInt8(ascii: "_") || b == UInt8(ascii: "-") { continue }
      return false
    }
    return true
  }
}

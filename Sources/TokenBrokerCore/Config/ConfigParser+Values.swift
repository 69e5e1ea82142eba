import TokenBrokerTOML

/// Typed readers: each returns nil after reporting why the value is unusable.
extension ConfigReader {
  mutating func table(_ value: TOMLValue, at key: [String]) -> TOMLTable? {
    guard let table = value.table else {
      wrongType(key, expected: "a table", found: value)
      return nil
    }
    return table
  }

  mutating func string(_ value: TOMLValue, at key: [String], allowEmpty: Bool = false) -> String? {
    guard let string = value.string else {
      wrongType(key, expected: "a string", found: value)
      return nil
    }
    if !allowEmpty, string.isEmpty {
      report(key, "must not be empty")
      return nil
    }
    return string
  }

  /// A finite number; integers are accepted.
  mutating func number(_ value: TOMLValue, at key: [String]) -> Double? {
    let number: Double
    if let int = value.int {
      number = Double(int)
    } else if let double = value.double {
      number = double
    } else {
      wrongType(key, expected: "a number", found: value)
      return nil
    }
    guard number.isFinite else {
      report(key, "expected a finite number, found \(Self.format(number))")
      return nil
    }
    return number
  }

  /// Formats a number for a message: `30`, `0.8`, `inf`.
  static func format(_ number: Double) -> String {
    if number.isFinite, number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
    return "\(number)"
  }

  /// `one of: a, b, c` from an enum's raw values.
  static func choices<E: RawRepresentable & CaseIterable>(_: E.Type) -> [String] where E.RawValue == String {
    E.allCases.map(\.rawValue)
  }

  /// A string that must be one of an enum's raw values; the message lists them.
  mutating func choice<E: RawRepresentable & CaseIterable>(
    _ value: TOMLValue, at key: [String], what: String, as type: E.Type = E.self
  ) -> E? where E.RawValue == String {
    let valid = Self.choices(E.self)
    guard let raw = value.string else {
      report(
        key, "expected a string (one of \(valid.joined(separator: ", "))), found \(Self.describe(value))")
      return nil
    }
    guard let result = E(rawValue: raw) else {
      report(
        key,
        "unknown \(what) \(Self.quote(raw))" + ConfigDidYouMean.hint(for: raw, among: valid)
          + " (expected one of: \(valid.joined(separator: ", ")))")
      return nil
    }
    return result
  }

  /// A user-supplied non-secret string in double quotes, control characters escaped.
  static func quote(_ text: String) -> String {
    var out = "\""
    for s in text.unicodeScalars {
      switch s {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case _ where s.value < 0x20 || s.value == 0x7F: out += "\\u{\(String(s.value, radix: 16))}"
      default: out.unicodeScalars.append(s)
      }
    }
    return out + "\""
  }

  /// An absolute path: begins with `/`, holds no NUL.
  mutating func absolutePath(_ value: TOMLValue, at key: [String]) -> String? {
    guard let path = string(value, at: key) else { return nil }
    guard path.hasPrefix("/") else {
      report(key, "must be an absolute path (starting with '/'), found \(Self.quote(path))")
      return nil
    }
    guard !path.unicodeScalars.contains("\0") else {
      report(key, "must not contain a NUL character")
      return nil
    }
    return path
  }

  /// A table whose every value is a string (e.g. `params`, `headers`); entries of another
  /// type are reported and left out.
  mutating func stringTable(_ value: TOMLValue, at key: [String]) -> [String: String]? {
    guard let table = value.table else {
      wrongType(key, expected: "a table of strings", found: value)
      return nil
    }
    var result: [String: String] = [:]
    for name in table.keys.sorted() {
      guard let entry = table[name] else { continue }
      guard let string = entry.string else {
        wrongType(key + [name], expected: "a string", found: entry)
        continue
      }
      result[name] = string
    }
    return result
  }

  /// The strings of an array, each with its position and line. A value that is not an array
  /// (`expected`: what the array holds) and each element that is not a string (`element`:
  /// what it should be) are reported; `allStrings` is false when an element was not.
  mutating func stringElements(_ value: TOMLValue, at key: [String], expected: String, element: String)
    -> (elements: [(index: Int, text: String, line: Int)], allStrings: Bool)?
  {
    guard let array = value.array else {
      wrongType(key, expected: expected, found: value)
      return nil
    }
    var elements: [(index: Int, text: String, line: Int)] = []
    var allStrings = true
    for index in 0..<array.count {
      let line = lines.line(of: key, element: index)
      guard let text = array[index].string else {
        report(
          key, line: line, "entry \(index + 1): expected \(element), found \(Self.describe(array[index]))")
        allStrings = false
        continue
      }
      elements.append((index, text, line))
    }
    return (elements, allStrings)
  }

  static let principalForms = "user:NAME, group:NAME, uid:N or gid:N"

  /// An array of `user:NAME`, `group:NAME`, `uid:N`, `gid:N`.
  mutating func principals(_ value: TOMLValue, at key: [String]) -> [Principal]? {
    guard
      let (elements, allStrings) = stringElements(
        value, at: key, expected: "an array of principals (\(Self.principalForms))",
        element: "a string (\(Self.principalForms))")
    else { return nil }
    var result: [Principal] = []
    var ok = allStrings
    for (_, text, line) in elements {
      let hasBlank = text.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 }
      guard !hasBlank, let principal = Principal(parsing: text) else {
        report(key, line: line, "\(Self.quote(text)) is not a principal; use \(Self.principalForms)")
        ok = false
        continue
      }
      result.append(principal)
    }
    return ok ? result : nil
  }
}

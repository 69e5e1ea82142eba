/// A value of a TOML document, with the 1-based line where it begins.
///
/// Date and time values keep their text as written: the configuration never uses them
/// except to say that a key has the wrong type.
package struct TOMLValue: Sendable, Equatable {
  package enum Kind: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    /// `1979-05-27T07:32:00Z`, `1979-05-27 07:32:00-07:00`.
    case offsetDateTime(String)
    /// `1979-05-27T07:32:00`.
    case localDateTime(String)
    /// `1979-05-27`.
    case localDate(String)
    /// `07:32:00.999`.
    case localTime(String)
    /// A static array (`[1, 2]`) or an array of tables (`[[name]]`).
    case array([TOMLValue])
    /// A table: the root, `[name]`, a dotted key's table or an inline table.
    case table(TOMLTable)
  }

  package var kind: Kind
  /// 1-based line where the value begins (for a table: where it is first mentioned).
  package var line: Int

  package init(_ kind: Kind, line: Int) {
    self.kind = kind
    self.line = line
  }

  package var string: String? {
    if case .string(let s) = kind { return s }
    return nil
  }

  package var int: Int64? {
    if case .integer(let i) = kind { return i }
    return nil
  }

  package var double: Double? {
    if case .float(let d) = kind { return d }
    return nil
  }

  package var bool: Bool? {
    if case .boolean(let b) = kind { return b }
    return nil
  }

  package var array: [TOMLValue]? {
    if case .array(let a) = kind { return a }
    return nil
  }

  package var table: TOMLTable? {
    if case .table(let t) = kind { return t }
    return nil
  }
}

/// A TOML table: keys in document order, each with its value and the line of its definition.
package struct TOMLTable: Sendable, Equatable {
  /// One key of a table.
  package struct Entry: Sendable, Equatable {
    package var value: TOMLValue
    /// 1-based line where the key is defined: its `key = value` line, its `[table]` header,
    /// the first `[[array]]` header, or where a dotted key or header first named it.
    package var line: Int
    /// Whether the value is an array of tables made by `[[name]]` headers.
    package var isArrayOfTables: Bool

    package init(value: TOMLValue, line: Int, isArrayOfTables: Bool = false) {
      self.value = value
      self.line = line
      self.isArrayOfTables = isArrayOfTables
    }
  }

  /// The keys in the order they were first defined.
  package private(set) var keys: [String] = []
  package private(set) var entries: [String: Entry] = [:]

  package init() {}

  package subscript(key: String) -> TOMLValue? { entries[key]?.value }

  /// Adds `key`, or replaces its entry while keeping its place in `keys`.
  package mutating func set(_ key: String, _ entry: Entry) {
    if entries.updateValue(entry, forKey: key) == nil { keys.append(key) }
  }

  package var isEmpty: Bool { keys.isEmpty }
  package var count: Int { keys.count }
}

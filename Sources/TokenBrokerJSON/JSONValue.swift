/// A parsed JSON value (RFC 8259), read by `JSONValue.parse(_:)`.
///
/// One reader for the whole broker: the core's token and error answers, JWT claims, tokenctl's
/// answers from the daemon. No Foundation: `JSONSerialization` costs ~5 ms of a command's
/// start-up and pulls ICU into a static binary.
///
/// An object keeps its members in document order, duplicates included; looking a key up with
/// `subscript(key:)` finds the *last* member of that name (what `JSONSerialization` did, and
/// what most readers do).
public indirect enum JSONValue: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([(String, JSONValue)])

  public static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.number(let x), .number(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
    default: return false
    }
  }

  /// The value of the last member named `key` of an object; nil when absent or not an object.
  public subscript(key: String) -> JSONValue? {
    if case .object(let pairs) = self { return pairs.last { $0.0 == key }?.1 }
    return nil
  }

  public var string: String? { if case .string(let s) = self { return s } else { return nil } }
  public var number: Double? { if case .number(let n) = self { return n } else { return nil } }
  public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
  public var object: [(String, JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }
  public var isNull: Bool { if case .null = self { return true } else { return false } }

  /// A number, or a string holding one (`"3600"`, `" 3600 "`): upstreams send `expires_in`
  /// and time claims either way. The string is trimmed of the characters Foundation's
  /// `CharacterSet.whitespaces` holds (tab and the Unicode space separators) and read by
  /// `Double(_:)`, as the broker did before; nil for anything else (a boolean is not a number).
  /// The result may be infinite or NaN for a string such as `"inf"`: callers check `isFinite`.
  public var numberOrNumericString: Double? {
    switch self {
    case .number(let n): return n
    case .string(let s): return Double(Self.trimmingSpaces(s))
    default: return nil
    }
  }

  /// `s` without leading and trailing tabs and Unicode space separators (general category Zs).
  static func trimmingSpaces(_ s: String) -> Substring {
    let scalars = s.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
    let last = scalars.lastIndex(where: { !isSpace($0) })!
    return Substring(scalars[first...last])
  }

  /// Tab, a Zs space (U+0020, U+00A0, U+1680, U+2000–U+200A, U+202F, U+205F, U+3000), or
  /// U+200B ZERO WIDTH SPACE, which Foundation's `whitespaces` still holds (a Zs before Unicode 4.0.1).
  static func isSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
  }
}

/// A minimal, allocation-light JSON writer for the broker's own answers and
/// request bodies (keys in the order given; no Foundation on the hot path).
public enum JSONWriter {
  /// `s` as a JSON string: the broker's one string escaper. `"` and `\` escaped, LF, CR and
  /// tab as `\n` `\r` `\t`, other bytes below 0x20 as `\u00XX`; everything else (DEL,
  /// non-ASCII) verbatim as UTF-8.
  public static func appendString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
      case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
      case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
      case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
      case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        out.append(contentsOf: [
          0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
        ])
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// An object builder: `var w = JSONWriter.Object(); w.field("a", "b"); w.bytes`.
  public struct Object {
    public private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var first = true

    public init() { bytes.reserveCapacity(256) }

    mutating func key(_ k: String) {
      if !first { bytes.append(UInt8(ascii: ",")) }
      first = false
      JSONWriter.appendString(k, to: &bytes)
      bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ k: String, _ v: String?) {
      key(k)
      if let v {
        JSONWriter.appendString(v, to: &bytes)
      } else {
        bytes.append(contentsOf: Array("null".utf8))
      }
    }

    public mutating func field(_ k: String, _ v: Int?) {
      key(k)
      bytes.append(contentsOf: Array((v.map { String($0) } ?? "null").utf8))
    }

    public mutating func field(_ k: String, _ v: Bool) {
      key(k)
      bytes.append(contentsOf: Array((v ? "true" : "false").utf8))
    }

    /// Inserts already-encoded JSON (an array or object).
    public mutating func raw(_ k: String, _ json: [UInt8]) {
      key(k)
      bytes.append(contentsOf: json)
    }

    public func finished() -> [UInt8] { bytes + [UInt8(ascii: "}")] }
  }

  public static func array(_ elements: [[UInt8]]) -> [UInt8] {
    var out: [UInt8] = [UInt8(ascii: "[")]
    for (i, e) in elements.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      out.append(contentsOf: e)
    }
    out.append(UInt8(ascii: "]"))
    return out
  }

  /// `value` encoded: object members in their order, whole numbers without a fraction.
  public static func encode(_ value: JSONValue) -> [UInt8] {
    var out: [UInt8] = []
    append(value, to: &out)
    return out
  }

  static func append(_ value: JSONValue, to out: inout [UInt8]) {
    switch value {
    case .null: out += Array("null".utf8)
    case .bool(let b): out += Array((b ? "true" : "false").utf8)
    case .number(let n):
      if n.isFinite, n == n.rounded(), abs(n) < 9_007_199_254_740_992 {
        out += Array(String(Int64(n)).utf8)
      } else if n.isFinite {
        out += Array("\(n)".utf8)
      } else {
        out += Array("null".utf8)
      }
    case .string(let s): appendString(s, to: &out)
    case .array(let a):
      out.append(UInt8(ascii: "["))
      for (i, e) in a.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        append(e, to: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .object(let members):
      out.append(UInt8(ascii: "{"))
      for (i, (k, v)) in members.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        appendString(k, to: &out)
        out.append(UInt8(ascii: ":"))
        append(v, to: &out)
      }
      out.append(UInt8(ascii: "}"))
    }
  }
}

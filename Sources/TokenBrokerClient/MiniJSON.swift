/// A tiny JSON reader for tokenctl (Foundation's JSON costs ~5 ms of start-up).
package indirect enum MiniJSON: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([MiniJSON])
  case object([(String, MiniJSON)])

  package static func == (a: MiniJSON, b: MiniJSON) -> Bool {
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

  package subscript(key: String) -> MiniJSON? {
    if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
    return nil
  }

  package var string: String? { if case .string(let s) = self { return s } else { return nil } }
  package var number: Double? { if case .number(let n) = self { return n } else { return nil } }
  package var array: [MiniJSON]? { if case .array(let a) = self { return a } else { return nil } }

  package static func parse(_ bytes: [UInt8]) -> MiniJSON? {
    var p = Parser(bytes: bytes)
    guard let v = p.value() else { return nil }
    p.skip()
    return p.i == bytes.count ? v : nil
  }

  struct Parser {
    let bytes: [UInt8]
    var i = 0
    var depth = 0

    mutating func skip() {
      while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
    }

    mutating func literal(_ s: String, _ v: MiniJSON) -> MiniJSON? {
      let u = Array(s.utf8)
      guard i + u.count <= bytes.count, Array(bytes[i..<(i + u.count)]) == u else { return nil }
      i += u.count
      return v
    }

    mutating func value() -> MiniJSON? {
      skip()
      guard i < bytes.count, depth < 64 else { return nil }
      switch bytes[i] {
      case UInt8(ascii: "n"): return literal("null", .null)
      case UInt8(ascii: "t"): return literal("true", .bool(true))
      case UInt8(ascii: "f"): return literal("false", .bool(false))
      case UInt8(ascii: "\""): return string().map(MiniJSON.string)
      case UInt8(ascii: "["):
        i += 1
        depth += 1
        defer { depth -= 1 }
        var out: [MiniJSON] = []
        skip()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
        while true {
          guard let v = value() else { return nil }
          out.append(v)
          skip()
          guard i < bytes.count else { return nil }
          if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
          if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
          return nil
        }
      case UInt8(ascii: "{"):
        i += 1
        depth += 1
        defer { depth -= 1 }
        var out: [(String, MiniJSON)] = []
        skip()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
        while true {
          skip()
          guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), let k = string() else { return nil }
          skip()
          guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
          i += 1
          guard let v = value() else { return nil }
          out.append((k, v))
          skip()
          guard i < bytes.count else { return nil }
          if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
          if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
          return nil
        }
      default:
        let start = i
        while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
        return Double(String(decoding: bytes[start..<i], as: UTF8.self)).map(MiniJSON.number)
      }
    }

    mutating func hex4() -> UInt32? {
      guard i + 4 <= bytes.count,
        let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
      else { return nil }
      i += 4
      return v
    }

    mutating func string() -> String? {
      i += 1
      var out: [UInt8] = []
      while i < bytes.count {
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
        case UInt8(ascii: "\\"):
          guard i < bytes.count else { return nil }
          let e = bytes[i]
          i += 1
          switch e {
          case UInt8(ascii: "n"): out.append(0x0A)
          case UInt8(ascii: "t"): out.append(0x09)
          case UInt8(ascii: "r"): out.append(0x0D)
          case UInt8(ascii: "b"): out.append(0x08)
          case UInt8(ascii: "f"): out.append(0x0C)
          case UInt8(ascii: "u"):
            guard var v = hex4() else { return nil }
            // A UTF-16 surrogate pair is two escapes: combine them.
            if (0xD800..<0xDC00).contains(v), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"),
              bytes[i + 1] == UInt8(ascii: "u")
            {
              i += 2
              guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
              v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
            }
            out += Array(String(Unicode.Scalar(v).map(Character.init) ?? "\u{FFFD}").utf8)
          default: out.append(e)
          }
        default: out.append(c)
        }
      }
      return nil
    }
  }
}

/// Base64 (RFC 4648) without Foundation: the standard alphabet with padding for
/// `Authorization: Basic`, and base64url decoding for a JWT's payload.
package enum Base64 {
  static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// RFC 4648 §4: standard alphabet, padded with `=` to a multiple of four characters.
  package static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var it = bytes.makeIterator()
    while let b0 = it.next() {
      let b1 = it.next()
      let b2 = it.next()
      let n = UInt32(b0) << 16 | UInt32(b1 ?? 0) << 8 | UInt32(b2 ?? 0)
      out.append(standardAlphabet[Int(n >> 18 & 0x3F)])
      out.append(standardAlphabet[Int(n >> 12 & 0x3F)])
      out.append(b1 == nil ? UInt8(ascii: "=") : standardAlphabet[Int(n >> 6 & 0x3F)])
      out.append(b2 == nil ? UInt8(ascii: "=") : standardAlphabet[Int(n & 0x3F)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// RFC 4648 §5 base64url without padding (RFC 7636's BASE64URL-ENCODE).
  static func encodeURL<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var s = encode(bytes)
    while s.hasSuffix("=") { s.removeLast() }
    return String(s.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
  }

  /// RFC 4648 §5 (base64url, `-` and `_`), padding optional; `+` and `/` of the standard
  /// alphabet are read too, as the Foundation-based decoder before did. Nil for any other character,
  /// `=` other than the padding the length calls for, or a length no encoding has (4n + 1).
  /// Unused low bits of the last character are ignored, as Foundation's decoder did.
  package static func decodeURL(_ text: String) -> [UInt8]? {
    var chars = Array(text.utf8)
    var pad = 0
    while chars.last == UInt8(ascii: "=") {
      chars.removeLast()
      pad += 1
    }
    guard chars.count % 4 != 1, pad <= (4 - chars.count % 4) % 4 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(chars.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for c in chars {
      guard let v = value(c) else { return nil }
      acc = acc << 6 | UInt32(v)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        acc &= (1 << UInt32(bits)) - 1
      }
    }
    return out
  }

  static func value(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
    case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
    case UInt8(ascii: "-"), UInt8(ascii: "+"): return 62
    case UInt8(ascii: "_"), UInt8(ascii: "/"): return 63
    default: return nil
    }
  }
}

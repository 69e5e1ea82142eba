/// A TOML document is UTF-8 and holds no NUL: both are checked before parsing.
extension TOMLParser {
  mutating func validateEncoding() throws(TOMLError) {
    var i = 0
    let n = bytes.count
    while i < n {
      let b = bytes[i]
      if b == 0 { throw error("the document contains a NUL byte", at: i) }
      if b < 0x80 {
        i += 1
        continue
      }
      guard let length = Self.scalarLength(bytes, at: i) else {
        throw error("the document is not valid UTF-8", at: i)
      }
      i += length
    }
  }

  /// The length of the well-formed UTF-8 sequence at `i` (lead byte >= 0x80), or nil:
  /// no overlong forms, no surrogates, nothing above U+10FFFF.
  static func scalarLength(_ bytes: [UInt8], at i: Int) -> Int? {
    let b = bytes[i]
    let length: Int
    let minimum: UInt32
    var scalar: UInt32
    switch b {
    case 0xC2...0xDF:
      length = 2
      minimum = 0x80
      scalar = UInt32(b & 0x1F)
    case 0xE0...0xEF:
      length = 3
      minimum = 0x800
      scalar = UInt32(b & 0x0F)
    case 0xF0...0xF4:
      length = 4
      minimum = 0x1_0000
      scalar = UInt32(b & 0x07)
    default:
      return nil
    }
    guard i + length <= bytes.count else { return nil }
    for k in 1..<length {
      let c = bytes[i + k]
      guard c & 0xC0 == 0x80 else { return nil }
      scalar = scalar << 6 | UInt32(c & 0x3F)
    }
    guard scalar >= minimum, scalar <= 0x10_FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
    return length
  }
}

import Testing

@testable import TokenBrokerJSON

/// A fixed-seed generator (SplitMix64): the same inputs on every run.
private struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Scalars the generated strings are drawn from: all of ASCII (controls, quote, backslash,
/// slash, DEL) and non-ASCII of every UTF-8 length, separators and the ends of the planes.
private let pool: [Unicode.Scalar] =
  (0..<0x80).map { Unicode.Scalar(UInt8($0)) }
  + [
    "\u{80}", "\u{A0}", "é", "ß", "\u{7FF}", "\u{800}", "€", "\u{2028}", "\u{2029}", "\u{D7FF}", "\u{E000}",
    "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{10000}", "😀", "🇩", "\u{10FFFF}", "中", "ع", "\u{301}",
  ]

/// A few hundred strings: every ASCII byte alone, every pair of the specials, and random mixes.
private let generated: [String] = {
  var out: [String] = (0..<0x80).map { String(Unicode.Scalar(UInt8($0))) }
  out += pool.dropFirst(0x80).map { String($0) }
  let specials: [Unicode.Scalar] = ["\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "u", "é"]
  for a in specials { for b in specials { out.append(String(String.UnicodeScalarView([a, b]))) } }
  var rng = SplitMix64(state: 0x746F_6B65_6E2D_6A73)
  for _ in 0..<200 {
    let length = Int.random(in: 0...40, using: &rng)
    out.append(String(String.UnicodeScalarView((0..<length).map { _ in pool.randomElement(using: &rng)! })))
  }
  return out
}()

@Suite struct RoundTripTests {
  @Test func generatedInputsAreAFewHundred() {
    #expect(generated.count > 400)
    #expect(Set(generated).count > 390)
  }

  /// Every generated string, written by the writer and read by the reader, comes back equal
  /// scalar for scalar; the written form is ASCII-safe where it must be (no raw control byte).
  @Test(arguments: generated)
  func stringRoundTrips(_ s: String) throws {
    var out: [UInt8] = []
    JSONWriter.appendString(s, to: &out)
    #expect(!out.contains { $0 < 0x20 }, "a raw control byte in \(out)")
    let back = try JSONValue.parsing(out)
    #expect(back.string.map { Array($0.unicodeScalars) } == Array(s.unicodeScalars))
  }

  @Test func objectsAndArraysRoundTrip() throws {
    for (i, s) in generated.enumerated() {
      var w = JSONWriter.Object()
      w.field(s, s)
      w.field("i", i)
      w.field("b", i % 2 == 0)
      w.field("none", nil as String?)
      var element: [UInt8] = []
      JSONWriter.appendString(s, to: &element)
      w.raw("list", JSONWriter.array([element, Array("1".utf8)]))
      let v = try JSONValue.parsing(w.finished())
      let expected: JSONValue = .object([
        (s, .string(s)), ("i", .number(Double(i))), ("b", .bool(i % 2 == 0)), ("none", .null),
        ("list", .array([.string(s), .number(1)])),
      ])
      #expect(v == expected, "\(s.debugDescription)")
      #expect(v.object?.first?.0.unicodeScalars.elementsEqual(s.unicodeScalars) == true)
    }
  }
}

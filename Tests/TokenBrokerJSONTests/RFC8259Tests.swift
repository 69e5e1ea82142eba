import Testing

@testable import TokenBrokerJSON

private func parse(_ text: String) -> JSONValue? {
  JSONValue.parse(Array(text.utf8))
}

/// The reason `bytes` is refused; nil when it parses.
private func refusal(_ bytes: [UInt8]) -> JSONParseError.Reason? {
  do {
    _ = try JSONValue.parsing(bytes)
    return nil
  } catch {
    return error.reason
  }
}

private func refusal(_ text: String) -> JSONParseError.Reason? {
  refusal(Array(text.utf8))
}

/// Every rule of the reader (RFC 8259), each accepted and refused side by side: a rule
/// that loosens fails the refusals, one that tightens fails the acceptances.
@Suite struct RFC8259Tests {
  // MARK: numbers

  @Test(arguments: [
    ("0", 0.0), ("-0", -0.0), ("7", 7), ("-7", -7), ("10", 10), ("3600", 3600), ("0.5", 0.5), ("-0.5", -0.5),
    ("1e3", 1000), ("1E3", 1000), ("1e+3", 1000), ("1e-3", 0.001), ("2.5E-1", 0.25), ("0e0", 0),
    ("1e-400", 0), ("1.8e19", 1.8e19), ("1e308", 1e308), ("-1e300", -1e300),
  ])
  func validNumbers(_ text: String, _ expected: Double) throws {
    let v = try JSONValue.parsing(Array(text.utf8))
    #expect(v == .number(expected))
    #expect(v.number?.sign == expected.sign)
    #expect(parse("[\(text)]") == .array([.number(expected)]))
    #expect(parse("{\"n\":\(text)}")?["n"]?.number == expected)
  }

  @Test(arguments: [
    "01", "-01", "00", "1.", "-1.", "1.e3", "1e", "1e+", "1E-", "--1", "0x10", "0X1F", "1x", "1.2.3",
    "1e3.5", "-a", "-.5", "1ee3", "-]",
  ])
  func malformedNumbersAreRefused(_ text: String) {
    #expect(refusal(text) == .invalidNumber)
    #expect(refusal("[\(text)]") == .invalidNumber)
    #expect(refusal("{\"n\":\(text)}") == .invalidNumber)
  }

  @Test(arguments: ["+1", ".5", "NaN", "nan", "Infinity", "inf", "-Infinity", "+Infinity"])
  func numbersOutsideTheGrammarAreRefused(_ text: String) {
    #expect(parse(text) == nil)
    #expect(parse("[\(text)]") == nil)
    #expect(parse("{\"n\":\(text)}") == nil)
  }

  @Test(arguments: ["1e309", "-1e309", "1e400", "1" + String(repeating: "0", count: 400)])
  func numbersBeyondADoubleAreRefused(_ text: String) {
    #expect(refusal(text) == .invalidNumber)
  }

  // MARK: literals and whitespace

  @Test(arguments: ["True", "FALSE", "Null", "nul", "tru", "fals", "nulll", "truefalse", "undefined"])
  func misspelledLiteralsAreRefused(_ text: String) {
    #expect(parse(text) == nil)
  }

  @Test func whitespaceIsSpaceTabCRAndLFOnly() {
    #expect(parse(" \t\r\n[ 1 ,\t2 ]\r\n ") == .array([.number(1), .number(2)]))
    #expect(parse("{ \"a\" \n:\r 1 }") == .object([("a", .number(1))]))
    // Other spaces Unicode or some readers know are bytes that start no value.
    for space in ["\u{0B}", "\u{0C}", "\u{A0}", "\u{2028}", "\u{FEFF}", "\u{00}"] {
      #expect(parse(" \(space)1") == nil, "leading \(space.unicodeScalars.first!.value)")
      #expect(parse("1\(space)") == nil, "trailing \(space.unicodeScalars.first!.value)")
      #expect(parse("[1,\(space)2]") == nil, "inner \(space.unicodeScalars.first!.value)")
    }
  }

  /// RFC 8259 §8.1 lets a reader ignore a byte order mark; Foundation did, so one UTF-8 BOM
  /// as the very first bytes is skipped. Anywhere else it is an unexpected byte.
  @Test func byteOrderMarkIsIgnoredAtTheStartOnly() throws {
    let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    #expect(try JSONValue.parsing(bom + Array(#"{"a":1}"#.utf8)) == .object([("a", .number(1))]))
    #expect(refusal(bom + bom + Array("{}".utf8)) == .unexpectedByte)
    #expect(refusal([0x20] + bom + Array("{}".utf8)) == .unexpectedByte)
    #expect(refusal(Array("[".utf8) + bom + Array("1]".utf8)) == .unexpectedByte)
    #expect(refusal(Array("{}".utf8) + bom) == .trailingData)
    #expect(refusal(bom) == .unexpectedEnd)
    #expect(refusal([0xEF, 0xBB] + Array("{}".utf8)) == .unexpectedByte)
  }

  @Test func emptyTextIsRefused() {
    #expect(refusal("") == .unexpectedEnd)
    #expect(refusal(" \n") == .unexpectedEnd)
  }

  // MARK: strings: escapes

  @Test func everyValidEscape() {
    #expect(parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
    #expect(
      parse(#""\u0000\u001f\u0020\u007F\u00e9\u00E9\uFFFF""#) == .string("\u{0}\u{1F} \u{7F}éé\u{FFFF}"))
  }

  @Test(arguments: [
    #""\a""#, #""\x41""#, #""\'""#, #""\U0041""#, #""\0""#, #""\ ""#, #""\e""#, #""\v""#,
    #""\u00G1""#, #""\u+041""#, #""\u-041""#, #""\u 041""#, #""\u004""#, #""\u""#,
  ])
  func invalidEscapesAreRefused(_ text: String) {
    #expect(refusal(text) == .invalidEscape)
    #expect(refusal("{\(text):1}") == .invalidEscape)
  }

  @Test func escapeCutShortIsRefused() {
    #expect(refusal(#""\"#) == .unexpectedEnd)
    #expect(refusal(#""\u00"#) == .unexpectedEnd)
  }

  // MARK: strings: surrogates

  @Test func surrogatePairsAreCombined() {
    #expect(parse(#""\ud83d\ude00""#) == .string("😀"))
    #expect(parse(#""\uD800\uDC00""#) == .string("\u{10000}"))
    #expect(parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
    #expect(parse(#""a\ud83d\ude00b\u00e9""#) == .string("a😀bé"))
  }

  /// Lone surrogates are refused, never replaced with U+FFFD: a token arrives as sent or not at all.
  @Test(arguments: [
    #""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\ude00\ud83d""#, #""\ud83d\ud83d""#,
    #""\ud83d\n""#, #""\uDFFF""#, #""\uD800""#, #""x\uDC00y""#,
  ])
  func loneSurrogatesAreRefused(_ text: String) {
    #expect(refusal(text) == .loneSurrogate)
  }

  // MARK: strings: raw bytes

  @Test func everyControlByteIsRefusedRaw() {
    for byte in UInt8(0)..<0x20 {
      #expect(refusal([0x22, byte, 0x22]) == .controlCharacter, "byte \(byte)")
      #expect(
        refusal([0x22, 0x61, byte, 0x5C, 0x6E, 0x22]) == .controlCharacter, "byte \(byte) after an escape")
    }
    // DEL and everything else printable in ASCII may appear raw.
    for byte in UInt8(0x20)..<0x80 where byte != 0x22 && byte != 0x5C {
      #expect(
        parse(String(decoding: [0x22, byte, 0x22], as: UTF8.self)) == .string(String(UnicodeScalar(byte))))
    }
  }

  @Test(
    arguments: [
      [0x80],  // a continuation byte alone
      [0xBF],
      [0xC0, 0x80],  // overlong NUL
      [0xC1, 0xBF],  // overlong
      [0xC2],  // cut short
      [0xC2, 0x41],  // not a continuation
      [0xE0, 0x80, 0x80],  // overlong three bytes
      [0xE0, 0x9F, 0xBF],
      [0xE2, 0x82],  // cut short
      [0xED, 0xA0, 0x80],  // UTF-8 encoded surrogate U+D800
      [0xED, 0xBF, 0xBF],  // U+DFFF
      [0xF0, 0x80, 0x80, 0x80],  // overlong four bytes
      [0xF0, 0x8F, 0xBF, 0xBF],
      [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
      [0xF5, 0x80, 0x80, 0x80],
      [0xF8, 0x88, 0x80, 0x80, 0x80],
      [0xFE], [0xFF],
      [0xF0, 0x9F, 0x98],  // 😀 cut short
      [0xF0, 0x9F, 0x98, 0x41],
    ] as [[UInt8]])
  func invalidUTF8IsRefused(_ bad: [UInt8]) {
    #expect(refusal([0x22] + bad + [0x22]) == .invalidUTF8)
    #expect(refusal([0x22, 0x5C, 0x6E] + bad + [0x22]) == .invalidUTF8, "after an escape")
    #expect(refusal([0x7B, 0x22] + bad + [0x22, 0x3A, 0x31, 0x7D]) == .invalidUTF8, "in a key")
  }

  @Test func wellFormedUTF8EdgesAreAccepted() throws {
    let cases: [([UInt8], String)] = [
      ([0xC2, 0x80], "\u{80}"), ([0xDF, 0xBF], "\u{7FF}"), ([0xE0, 0xA0, 0x80], "\u{800}"),
      ([0xED, 0x9F, 0xBF], "\u{D7FF}"), ([0xEE, 0x80, 0x80], "\u{E000}"), ([0xEF, 0xBF, 0xBF], "\u{FFFF}"),
      ([0xF0, 0x90, 0x80, 0x80], "\u{10000}"), ([0xF4, 0x8F, 0xBF, 0xBF], "\u{10FFFF}"),
      ([0xF0, 0x9F, 0x98, 0x80], "😀"),
    ]
    for (bytes, expected) in cases {
      #expect(try JSONValue.parsing([0x22] + bytes + [0x22]) == .string(expected), "\(bytes)")
      #expect(try JSONValue.parsing([0x22, 0x5C, 0x74] + bytes + [0x22]) == .string("\t" + expected))
    }
  }

  @Test func unterminatedStringIsRefused() {
    #expect(refusal(#""abc"#) == .unexpectedEnd)
    #expect(refusal(#"{"a"#) == .unexpectedEnd)
    #expect(refusal(#""a\n"#) == .unexpectedEnd)
  }

  // MARK: structure

  @Test(arguments: [
    "[1,]", "[,1]", "[1 2]", "[1,,2]", "{,}", #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":1 "b":2}"#, #"{a:1}"#,
    #"{'a':1}"#, #"{1:1}"#, #"{"a":1]"#, #"[1}"#, "]", "}", ":", ",",
  ])
  func malformedContainersAreRefused(_ text: String) {
    #expect(refusal(text) == .unexpectedByte)
  }

  @Test(arguments: ["[", "[1", "[1,", "{", #"{"a""#, #"{"a":"#, #"{"a":1"#, #"{"a":1,"#, "tr", "-"])
  func cutShortIsRefused(_ text: String) {
    #expect(refusal(text) == .unexpectedEnd)
  }

  @Test(arguments: ["1 2", "{} {}", "[] x", "null,", #""a" "b""#, "{}}", "[]]", "true false", "0 0"])
  func trailingDataIsRefused(_ text: String) {
    #expect(refusal(text) == .trailingData)
  }

  @Test func anyValueAtTheTopLevel() {
    #expect(parse("null") == .null)
    #expect(parse("true") == .bool(true))
    #expect(parse(#""s""#) == .string("s"))
    #expect(parse("-2") == .number(-2))
  }

  // MARK: depth

  @Test func sixtyFourNestedContainersAreTheLimit() {
    for (open, close) in [("[", "]"), (#"{"k":"#, "}")] {
      let ok = String(repeating: open, count: 64) + "1" + String(repeating: close, count: 64)
      #expect(parse(ok) != nil, "64 deep \(open)")
      let deep = String(repeating: open, count: 65) + "1" + String(repeating: close, count: 65)
      #expect(refusal(deep) == .tooDeep, "65 deep \(open)")
    }
    // Mixed, and depth counts open containers only: siblings do not add up.
    let mixed = String(repeating: #"[{"a":"#, count: 31) + "[[]]" + String(repeating: "}]", count: 31)
    #expect(parse(mixed) != nil)
    #expect(refusal("[" + mixed + "]") == .tooDeep)
    let wide =
      "["
      + Array(repeating: String(repeating: "[", count: 63) + String(repeating: "]", count: 63), count: 50)
      .joined(separator: ",") + "]"
    #expect(parse(wide) != nil)
    #expect(JSONValue.maxDepth == 64)
  }

  @Test func hostileDepthIsRefusedWithoutExhaustingTheStack() {
    #expect(refusal(String(repeating: "[", count: 1_000_000)) == .tooDeep)
    #expect(refusal(String(repeating: #"{"a":"#, count: 100_000)) == .tooDeep)
  }

  // MARK: duplicate keys

  @Test func duplicateKeysAreKeptAndTheLastOneWinsOnLookup() throws {
    let v = try #require(parse(#"{"k":1,"x":true,"k":"two","k":[3]}"#))
    #expect(v["k"] == .array([.number(3)]))
    #expect(v.object?.filter { $0.0 == "k" }.count == 3)
    #expect(v.object?.map(\.0) == ["k", "x", "k", "k"])
    let nested = try #require(parse(#"{"e":{"code":"a"},"e":{"code":"b"}}"#))
    #expect(nested["e"]?["code"]?.string == "b")
  }

  // MARK: where a refusal is reported

  @Test func offsetsPointAtTheFault() throws {
    #expect(throws: JSONParseError(.invalidNumber, at: 5)) { try JSONValue.parsing(Array("[1, 01]".utf8)) }
    #expect(throws: JSONParseError(.controlCharacter, at: 3)) {
      try JSONValue.parsing([0x5B, 0x22, 0x61, 0x0A])
    }
    #expect(throws: JSONParseError(.trailingData, at: 3)) { try JSONValue.parsing(Array("{} x".utf8)) }
    #expect(throws: JSONParseError(.loneSurrogate, at: 2)) {
      try JSONValue.parsing(Array(#"["\ud800"]"#.utf8))
    }
    #expect(JSONParseError(.tooDeep, at: 64).description == "tooDeep at byte 64")
  }
}

import Testing

@testable import TokenBrokerTOML

/// Mutated documents never trap the parser: each parses or fails with a located error.
@Suite struct TOMLParserRobustnessTests {
  /// xorshift64*: the same inputs on every run.
  struct Random {
    var state: UInt64

    mutating func next() -> UInt64 {
      state ^= state >> 12
      state ^= state << 25
      state ^= state >> 27
      return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
  }

  static let seed = Array(
    #"""
    # comment
    title = "TOML \"Example\" \u00E9"
    [owner]
    name = 'Tom'
    dob = 1979-05-27T07:32:00-08:00
    [database]
    ports = [ 8000, 8001, 0x1F, 0o7, 0b1 ]
    data = [ ["delta", "phi"], [3.14, -inf, nan, 1e-3] ]
    temp = { cpu = 79.5, case.x = 72.0 }
    s = """
    multi \
      line"""
    l = '''raw
    text'''
    [[servers]]
    a.b."c d" = true
    [servers.alpha]
    t = 07:32:00
    """#.utf8)

  static let alphabet: [UInt8] =
    Array("[]{}=,.\"'\\#\n\r\t _-+:0123456789aeEfinstuxzTZ".utf8) + [0x00, 0xC3, 0xA9, 0xFF]

  @Test func mutatedDocumentsNeverTrap() {
    var random = Random(state: 0x9E37_79B9_7F4A_7C15)
    var parsed = 0
    var failed = 0
    for _ in 0..<5_000 {
      var bytes = Self.seed
      for _ in 0...random.below(4) {
        let at = random.below(bytes.count + 1)
        switch random.below(4) {
        case 0 where at < bytes.count: bytes.remove(at: at)
        case 1: bytes.insert(Self.alphabet[random.below(Self.alphabet.count)], at: at)
        case 2 where at < bytes.count: bytes[at] = Self.alphabet[random.below(Self.alphabet.count)]
        default: bytes = Array(bytes[..<at])
        }
      }
      let lineCount = bytes.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
      do {
        _ = try TOMLParser.parse(bytes: bytes)
        parsed += 1
      } catch {
        failed += 1
        #expect((1...lineCount).contains(error.line), "\(error)")
        #expect(error.column >= 1 && !error.message.isEmpty, "\(error)")
      }
    }
    // Both outcomes are exercised.
    #expect(parsed > 100)
    #expect(failed > 100)
  }
}

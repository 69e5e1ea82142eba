import Foundation
import Testing

@testable import TokenBrokerCore

/// The decoder the core used before (Foundation): the oracle the own one must agree with.
private func foundationBase64URLDecode(_ text: String) -> [UInt8]? {
  var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
  while s.count % 4 != 0 { s += "=" }
  return Data(base64Encoded: s).map { [UInt8]($0) }
}

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

@Suite struct Base64Tests {
  /// RFC 4648 §10.
  @Test(arguments: [
    ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
    ("foobar", "Zm9vYmFy"),
  ])
  func rfc4648Vectors(_ plain: String, _ encoded: String) {
    #expect(Base64.encode(plain.utf8) == encoded)
    #expect(Base64.decodeURL(encoded) == Array(plain.utf8))
    #expect(Base64.decodeURL(encoded.replacingOccurrences(of: "=", with: "")) == Array(plain.utf8))
  }

  @Test func encodeMatchesFoundationForEveryByteAndLength() {
    let all = (0...255).map(UInt8.init)
    #expect(Base64.encode(all) == Data(all).base64EncodedString())
    var rng = SplitMix64(state: 42)
    for length in 0..<300 {
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
      #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString(), "length \(length)")
    }
    #expect(Base64.encode("id:with:colons:pä$$ w0rd".utf8) == "aWQ6d2l0aDpjb2xvbnM6cMOkJCQgdzByZA==")
  }

  @Test func urlAlphabetDecodes() {
    #expect(Base64.decodeURL("-_-_") == [0xFB, 0xFF, 0xBF])
    #expect(
      Base64.decodeURL("eyJzdWIiOiJ-fn4_Pz4-IiwiZXhwIjoxNzA0MDY3MjAwfQ")
        == Array(#"{"sub":"~~~??>>","exp":1704067200}"#.utf8))
  }

  @Test(arguments: [
    "a", "abcde", "ab=c", "=abc", "ab===", "a===", "abcd=", "abc==", "ab cd", "ab\ncd", "ab.c", "é", "ab%3D",
  ])
  func malformedIsRefused(_ text: String) {
    #expect(Base64.decodeURL(text) == nil)
  }

  /// Against the old Foundation-based decoder, on random texts over the alphabets, `=` and
  /// junk: whatever the own decoder reads, Foundation read the same; it refuses only texts
  /// Foundation was lenient with, all of them with a `=` where no padding belongs
  /// (`"ab=c"`, `"abcd="`, `"="`), which no base64url encoder writes.
  @Test func decodeAgreesWithTheFoundationDecoder() {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    let extra = Array("+/=.~ !")
    var rng = SplitMix64(state: 7)
    var readDifferently: [String] = []
    var refusedWithoutStrayPadding: [String] = []
    var decoded = 0
    for _ in 0..<5000 {
      let length = Int.random(in: 0...24, using: &rng)
      let text = String(
        (0..<length).map { _ in
          Int.random(in: 0..<20, using: &rng) == 0
            ? extra.randomElement(using: &rng)! : alphabet.randomElement(using: &rng)!
        })
      let ours = Base64.decodeURL(text)
      let theirs = foundationBase64URLDecode(text)
      if let ours {
        decoded += 1
        if ours != theirs { readDifferently.append(text) }
      } else if theirs != nil, !text.contains("=") {
        refusedWithoutStrayPadding.append(text)
      }
    }
    #expect(readDifferently.isEmpty, "\(readDifferently.prefix(20))")
    #expect(refusedWithoutStrayPadding.isEmpty, "\(refusedWithoutStrayPadding.prefix(20))")
    #expect(decoded > 1000)
  }

  /// What a JWT carries: random bytes in base64url, with and without padding.
  @Test func validBase64URLDecodesLikeFoundation() {
    var rng = SplitMix64(state: 11)
    for length in 0..<200 {
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
      let padded = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
      let unpadded = padded.replacingOccurrences(of: "=", with: "")
      #expect(Base64.decodeURL(padded) == bytes)
      #expect(Base64.decodeURL(unpadded) == bytes)
      #expect(foundationBase64URLDecode(unpadded) == bytes)
    }
  }
}

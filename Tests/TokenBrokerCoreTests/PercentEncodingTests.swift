import Foundation
import Testing

@testable import TokenBrokerCore

@Suite struct PercentEncodingTests {
  /// Every ASCII character and a few multi-byte ones, alone and in a run, against the
  /// `String(format: "%%%02X")` encoding the core used before.
  @Test func matchesTheFormatBasedEncoding() {
    func oracle(_ s: String) -> String {
      var out = ""
      for byte in s.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
          UInt8(ascii: "~"):
          out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
          out += String(format: "%%%02X", byte)
        }
      }
      return out
    }
    var inputs = (0..<0x80).map { String(Unicode.Scalar(UInt8($0))) }
    inputs += ["é", "€", "😀", "\u{FFFF}", "a b+c&d=e%f", "", inputs.joined()]
    for s in inputs {
      #expect(TokenRequestBuilder.percentEncode(s) == oracle(s), "\(s.debugDescription)")
    }
    #expect(TokenRequestBuilder.percentEncode("é ~") == "%C3%A9%20~")
  }
}

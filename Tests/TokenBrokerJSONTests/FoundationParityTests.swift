import Foundation
import Testing

@testable import TokenBrokerJSON

/// The reader replaced `JSONSerialization` in the core: for valid JSON it must read what
/// Foundation read (Foundation stays an oracle in the tests only).
private let booleanType = type(of: NSNumber(value: true))

/// Whether `v` is what Foundation made of the same text (objects: the last duplicate wins).
private func matches(_ v: JSONValue, _ any: Any) -> Bool {
  switch v {
  case .null: return any is NSNull
  case .bool(let b):
    guard let n = any as? NSNumber, type(of: n) == booleanType else { return false }
    return n.boolValue == b
  case .number(let d):
    guard let n = any as? NSNumber, type(of: n) != booleanType else { return false }
    return n.doubleValue == d
  case .string(let s):
    return (any as? String).map { Array($0.unicodeScalars) == Array(s.unicodeScalars) } ?? false
  case .array(let a):
    guard let other = any as? [Any], other.count == a.count else { return false }
    return zip(a, other).allSatisfy { matches($0, $1) }
  case .object(let pairs):
    guard let other = any as? [String: Any], Set(pairs.map(\.0)) == Set(other.keys) else { return false }
    return other.allSatisfy { key, value in v[key].map { matches($0, value) } ?? false }
  }
}

@Suite struct FoundationParityTests {
  @Test(arguments: [
    #"{"token_type":"Bearer","expires_in":3600,"access_token":"NgXCXRKc...Mz0Yjw="}"#,
    #"{"access_token":"\u00e9t\ud83d\ude00","token_type":"B\u0000","scope":["read","write",3]}"#,
    #"{"access_token":"a","expires_in":" 3600 ","token_type":"BEARER","created_at":1642051911}"#,
    #"{"a":1,"a":2,"b":{"c":[true,false,null,-0.5e-3,1E+2]}}"#,
    #"{"error":{"code":"invalid_grant","message":"refresh token reused; family revoked"}}"#,
    #"[1.8e19, 18000009001800000000, 9007199254740993, -9223372036854775808, 1e308, 1e-320]"#,
    #"  {"\/\b\f\n\r\t\"\\":"x"}  "#, "0", "[]", "{}", #""""#,
  ])
  func sameValuesAsJSONSerialization(_ text: String) throws {
    let ours = try JSONValue.parsing(Array(text.utf8))
    let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    #expect(matches(ours, theirs), "\(ours) vs \(theirs)")
  }

  /// Where Foundation was more lenient, on purpose: it read UTF-16 and UTF-32 texts and 512
  /// levels of nesting; the reader takes UTF-8 only (RFC 8259 §8.1) and 64 levels.
  @Test func deliberateDifferencesFromFoundation() throws {
    let utf16 = Array(#"{"a":1}"#.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
    #expect((try? JSONSerialization.jsonObject(with: Data(utf16))) != nil)
    #expect(JSONValue.parse(utf16) == nil)
    let deep = Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8)
    #expect((try? JSONSerialization.jsonObject(with: Data(deep))) != nil)
    #expect(JSONValue.parse(deep) == nil)
    // Both read a UTF-8 byte order mark at the start.
    let bom = [0xEF, 0xBB, 0xBF] + Array(#"{"a":1}"#.utf8)
    let theirs = try JSONSerialization.jsonObject(with: Data(bom))
    #expect(matches(try JSONValue.parsing(bom), theirs))
  }

  /// `numberOrNumericString` trims exactly what `trimmingCharacters(in: .whitespaces)` did,
  /// for every character of the Basic Multilingual Plane and a few beyond it.
  @Test func numericStringsTrimLikeFoundation() {
    var differences: [UInt32] = []
    let scalars =
      (0..<0xD800).compactMap(Unicode.Scalar.init) + (0xE000..<0x10000).compactMap(Unicode.Scalar.init)
      + ["\u{10000}", "\u{E0020}", "\u{1F600}"]
    for c in scalars {
      let s = "\(c)3600\(c)"
      let ours = JSONValue.string(s).numberOrNumericString
      let theirs = Double(s.trimmingCharacters(in: .whitespaces))
      if ours != theirs && !(ours?.isNaN == true && theirs?.isNaN == true) { differences.append(c.value) }
    }
    #expect(differences.isEmpty, "\(differences.map { String($0, radix: 16) })")
  }

  @Test func numberOrNumericString() {
    #expect(JSONValue.number(3600).numberOrNumericString == 3600)
    #expect(JSONValue.string("3600").numberOrNumericString == 3600)
    #expect(JSONValue.string(" 3600 ").numberOrNumericString == 3600)
    #expect(JSONValue.string("\t90.5\u{A0}").numberOrNumericString == 90.5)
    #expect(JSONValue.string("-5").numberOrNumericString == -5)
    #expect(JSONValue.string("1e3").numberOrNumericString == 1000)
    for notANumber in ["", "  ", "3600s", "soon", "36 00", "\n3600", "3600\n"] {
      #expect(JSONValue.string(notANumber).numberOrNumericString == nil, "\(notANumber.debugDescription)")
    }
    #expect(JSONValue.bool(true).numberOrNumericString == nil)
    #expect(JSONValue.null.numberOrNumericString == nil)
    #expect(JSONValue.array([.number(1)]).numberOrNumericString == nil)
    #expect(JSONValue.object([("n", .number(1))]).numberOrNumericString == nil)
  }
}

import Foundation
import Testing

@testable import TokenBrokerJSON

private func encoded(_ s: String) -> String {
  var out: [UInt8] = []
  JSONWriter.appendString(s, to: &out)
  return String(decoding: out, as: UTF8.self)
}

@Suite struct JSONWriterTests {
  @Test(arguments: [
    ("plain", #""plain""#),
    ("", #""""#),
    (#"say "hi""#, #""say \"hi\"""#),
    (#"back\slash"#, #""back\\slash""#),
    ("a/b", #""a/b""#),
    ("nl\ncr\rtab\t", #""nl\ncr\rtab\t""#),
    ("\u{0}\u{1}\u{8}\u{C}\u{1B}\u{1F}", #""\u0000\u0001\u0008\u000c\u001b\u001f""#),
    ("é€😀", "\"é€😀\""),
    ("del\u{7F}", "\"del\u{7F}\""),
  ])
  func stringEscaping(_ input: String, _ expected: String) throws {
    let text = encoded(input)
    #expect(text == expected)
    let decoded = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    #expect(decoded as? String == input)
  }

  @Test func objectFieldsInOrder() {
    var w = JSONWriter.Object()
    w.field("provider", "energy")
    w.field("expires_in", 3599)
    w.field("last_error", nil as String?)
    w.field("next_refresh", nil as Int?)
    w.field("ok", true)
    w.field("degraded", false)
    w.raw("scope", JSONWriter.array([Array(#""a""#.utf8), Array(#""b""#.utf8)]))
    w.raw("nested", Array(#"{"x":1}"#.utf8))
    #expect(
      String(decoding: w.finished(), as: UTF8.self)
        == #"{"provider":"energy","expires_in":3599,"last_error":null,"next_refresh":null,"ok":true,"#
        + #""degraded":false,"scope":["a","b"],"nested":{"x":1}}"#)
  }

  @Test func emptyObject() {
    #expect(String(decoding: JSONWriter.Object().finished(), as: UTF8.self) == "{}")
  }

  @Test func bytesIsTheUnfinishedObject() {
    var w = JSONWriter.Object()
    w.field("a", 1)
    #expect(String(decoding: w.bytes, as: UTF8.self) == #"{"a":1"#)
    #expect(String(decoding: w.finished(), as: UTF8.self) == #"{"a":1}"#)
  }

  @Test func keysAreEscaped() {
    var w = JSONWriter.Object()
    w.field("we\"ird\nkey", "v")
    w.field("n", -42)
    #expect(String(decoding: w.finished(), as: UTF8.self) == #"{"we\"ird\nkey":"v","n":-42}"#)
  }

  @Test func arrays() {
    #expect(JSONWriter.array([]) == Array("[]".utf8))
    #expect(JSONWriter.array([Array("1".utf8)]) == Array("[1]".utf8))
    #expect(
      JSONWriter.array([Array("1".utf8), Array("{}".utf8), Array("null".utf8)]) == Array("[1,{},null]".utf8))
  }

  @Test func outputParsesAsJSON() throws {
    var w = JSONWriter.Object()
    w.field("token", "abc\"\\\u{1}")
    w.field("n", 7)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(w.finished())) as? [String: Any])
    #expect(object["token"] as? String == "abc\"\\\u{1}")
    #expect(object["n"] as? Int == 7)
  }
}

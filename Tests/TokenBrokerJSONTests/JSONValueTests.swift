import Testing

@testable import TokenBrokerJSON

private func parse(_ text: String) -> JSONValue? {
  JSONValue.parse(Array(text.utf8))
}

@Suite struct JSONValueTests {
  @Test func tokenAnswer() throws {
    let text = """
      {"provider":"energy","access_token":"abc.def","token_type":"Bearer","expires_in":3599,
       "expires_at":"2027-01-15T08:00:00Z","scope":"read:sites","header":"Authorization: Bearer abc.def"}
      """
    let v = try #require(parse(text))
    #expect(v["provider"]?.string == "energy")
    #expect(v["access_token"]?.string == "abc.def")
    #expect(v["expires_in"]?.number == 3599)
    #expect(v["header"]?.string == "Authorization: Bearer abc.def")
    #expect(v["missing"] == nil)
    #expect(v["expires_in"]?.string == nil)
    #expect(v["provider"]?.number == nil)
  }

  @Test func statusAnswer() throws {
    let text = """
      {"version":"1.0.0","uptime":12,"providers":[
        {"name":"energy","state":"ok","expires_in":3000,"last_error":null,"failures":0},
        {"name":"powerverse","state":"degraded","expires_in":null,"last_error":"upstream 503"}]}
      """
    let v = try #require(parse(text))
    let providers = try #require(v["providers"]?.array)
    #expect(providers.count == 2)
    #expect(providers[0]["name"]?.string == "energy")
    #expect(providers[0]["last_error"] == .null)
    #expect(providers[1]["state"]?.string == "degraded")
    #expect(providers[1]["expires_in"] == .null)
    #expect(providers[1]["last_error"]?.string == "upstream 503")
  }

  @Test func errorAnswer() throws {
    let v = try #require(parse(#"{"error":{"code":"forbidden","message":"uid 1500 may not use energy"}}"#))
    #expect(v["error"]?["code"]?.string == "forbidden")
    #expect(v["error"]?["message"]?.string == "uid 1500 may not use energy")
  }

  @Test func scalars() {
    #expect(parse("null") == .null)
    #expect(parse("true") == .bool(true))
    #expect(parse("false") == .bool(false))
    #expect(parse("0") == .number(0))
    #expect(parse("-1.5e3") == .number(-1500))
    #expect(parse("3.25") == .number(3.25))
    #expect(parse("1E2") == .number(100))
    #expect(parse(#""s""#) == .string("s"))
    #expect(parse(" \t\r\n 42 \n") == .number(42))
  }

  @Test func containers() {
    #expect(parse("[]") == .array([]))
    #expect(parse("{}") == .object([]))
    #expect(
      parse(" [ 1 , \"a\" , [ ] , { } ] ") == .array([.number(1), .string("a"), .array([]), .object([])]))
    let nested = JSONValue.object([("a", .object([("b", .array([.bool(true), .null]))]))])
    #expect(parse(#"{"a":{"b":[true,null]}}"#) == nested)
  }

  @Test func objectKeepsKeyOrderAndLastDuplicateWins() throws {
    let v = try #require(parse(#"{"b":1,"a":2,"b":3}"#))
    #expect(v == .object([("b", .number(1)), ("a", .number(2)), ("b", .number(3))]))
    #expect(v != .object([("a", .number(2)), ("b", .number(1)), ("b", .number(3))]))
    #expect(v["b"]?.number == 3)
  }

  @Test func stringEscapes() {
    #expect(parse(#""a\"b\\c\/d""#) == .string("a\"b\\c/d"))
    #expect(parse(#""\n\t\r\b\f""#) == .string("\n\t\r\u{8}\u{C}"))
    #expect(parse(#""\u00e9\u20AC\u0041""#) == .string("é€A"))
    #expect(parse("\"é😀\"") == .string("é😀"))
  }

  @Test func surrogatePairsAreCombined() {
    #expect(parse(#""\ud83d\ude00""#) == .string("😀"))
  }

  @Test(arguments: [
    "", " ", "{", "}", "[", "[1,", "[1 2]", "[1,]", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{a:1}"#,
    #"{"a":1"#, #""unterminated"#, #""bad \u12""#, #""bad \uzzzz""#, "tru", "nul", "falsey", "1 2",
    "{} x", "-", "1.2.3", "+-", "abc", "'s'",
  ])
  func invalid(_ text: String) {
    #expect(parse(text) == nil)
  }

  @Test func nestingDepthIsBounded() {
    let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
    #expect(parse(ok) != nil)
    let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
    #expect(parse(deep) == nil)
    let hostile = String(repeating: "[", count: 100_000)
    #expect(parse(hostile) == nil)
  }

  @Test func accessorsOnOtherShapes() {
    #expect(JSONValue.array([.null]).array == [.null])
    #expect(JSONValue.string("x").array == nil)
    #expect(JSONValue.array([])["k"] == nil)
    #expect(JSONValue.number(1) != .string("1"))
    #expect(JSONValue.bool(true) != .bool(false))
  }

  @Test func everyAccessorAnswersOnlyForItsShape() {
    let all: [JSONValue] = [.null, .bool(false), .number(0), .string(""), .array([]), .object([])]
    #expect(all.map { $0.isNull } == [true, false, false, false, false, false])
    #expect(all.map { $0.bool != nil } == [false, true, false, false, false, false])
    #expect(all.map { $0.number != nil } == [false, false, true, false, false, false])
    #expect(all.map { $0.string != nil } == [false, false, false, true, false, false])
    #expect(all.map { $0.array != nil } == [false, false, false, false, true, false])
    #expect(all.map { $0.object != nil } == [false, false, false, false, false, true])
    #expect(JSONValue.bool(true).bool == true)
    #expect(parse(#"{"a":null}"#)?["a"]?.isNull == true)
    #expect(parse(#"{"a":null}"#)?["b"] == nil)
    #expect(parse(#"{"z":1,"a":[2]}"#)?.object?.map(\.0) == ["z", "a"])
    #expect(JSONValue.string("x")["k"] == nil)
  }
}

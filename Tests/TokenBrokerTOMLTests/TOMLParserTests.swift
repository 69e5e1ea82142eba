import Testing

@testable import TokenBrokerTOML

// MARK: - helpers

/// The value of key `x` of a one-line document `x = <literal>`.
func tomlValue(_ literal: String) throws -> TOMLValue.Kind {
  let root = try TOMLParser.parse("x = \(literal)")
  return try #require(root["x"]).kind
}

/// The error `text` fails with, nil when it parses.
func tomlFailure(_ text: String) -> TOMLError? {
  do {
    _ = try TOMLParser.parse(text)
    return nil
  } catch {
    return error
  }
}

/// `LINE:COLUMN: message` of the error `text` fails with.
func tomlLocated(_ text: String) -> String? {
  tomlFailure(text).map { "\($0.line):\($0.column): \($0.message)" }
}

let tomlBareKeyHint =
  "expected a key: a bare key may hold only A-Z, a-z, 0-9, '_' and '-' (put other keys in quotes)"

// MARK: - values

@Suite struct TOMLStringTests {
  @Test func basicStringEscapes() throws {
    #expect(try tomlValue(#""a\tb\nc\"d\\e\bf\fg\rh""#) == .string("a\tb\nc\"d\\e\u{8}f\u{C}g\rh"))
    #expect(try tomlValue(#""caf\u00E9 \U0001F600""#) == .string("café 😀"))
    #expect(try tomlValue(#""""#) == .string(""))
    #expect(try tomlValue("\"tab\\tand literal\ttab\"") == .string("tab\tand literal\ttab"))
  }

  @Test func multilineBasicStrings() throws {
    #expect(try tomlValue("\"\"\"\nline one\nline two\"\"\"") == .string("line one\nline two"))
    #expect(try tomlValue("\"\"\"\r\nwindows\r\nnewlines\"\"\"") == .string("windows\nnewlines"))
    // A line-ending backslash swallows the newline and the blanks after it.
    #expect(
      try tomlValue("\"\"\"The quick \\\n\n    brown \\   \n  fox\"\"\"") == .string("The quick brown fox"))
    // Up to two quotes right before the closing ones belong to the content.
    #expect(try tomlValue(#""""a "quoted" b""""#) == .string(#"a "quoted" b"#))
    #expect(try tomlValue("\"\"\"\"one\"\"\"") == .string("\"one"))
    #expect(try tomlValue("\"\"\"two\"\"\"\"\"") == .string("two\"\""))
  }

  @Test func literalStrings() throws {
    #expect(try tomlValue(#"'C:\Users\nodejs\templates'"#) == .string(#"C:\Users\nodejs\templates"#))
    #expect(try tomlValue("'''\nfirst\n  second\\n'''") == .string("first\n  second\\n"))
    #expect(try tomlValue("''''That,' she said'''") == .string("'That,' she said"))
    #expect(try tomlValue("''''''") == .string(""))
  }

  @Test func stringErrorsHaveLineAndColumn() {
    #expect(tomlLocated("a = 1\nx = \"abc") == "2:5: unterminated string")
    #expect(
      tomlLocated("x = \"abc\ny = 1")
        == "1:5: unterminated string: a basic string ends on its line (use \"\"\" for several lines)")
    #expect(tomlLocated("x = 'abc") == "1:5: unterminated string")
    #expect(tomlLocated("x = \"\"\"abc\n") == "1:5: unterminated multi-line string")
    #expect(tomlLocated("x = '''abc''") == "1:5: unterminated multi-line string")
    #expect(
      tomlLocated("x = \"a\u{1}b\"")
        == "1:7: control character in a string; write it as an escape such as \\t or \\u0001")
    #expect(tomlFailure("x = 'a\u{7F}b'")?.column == 7)
    #expect(tomlFailure("x = \"\"\"a\u{0B}\"\"\"")?.message.hasPrefix("control character") == true)
    #expect(
      tomlFailure("x = \"\"\"a\rb\"\"\"")?.message == "a carriage return must be followed by a line feed")
    #expect(tomlFailure("x = \"\"\"a\"\"\"\"\"\"\"")?.message.hasPrefix("more than five quotes") == true)
  }

  @Test func escapeErrors() {
    let unknown = tomlLocated(#"password = "x\qy""#)
    #expect(unknown?.hasPrefix("1:14: unknown escape sequence in a string") == true)
    #expect(tomlLocated(#"x = "\u12""#) == "1:6: \\u must be followed by 4 hexadecimal digits")
    #expect(tomlLocated(#"x = "\U0001F60""#) == "1:6: \\U must be followed by 8 hexadecimal digits")
    #expect(tomlLocated(#"x = "\uD800""#) == "1:6: the escape is not a Unicode scalar value")
    #expect(tomlLocated(#"x = "\U00110000""#) == "1:6: the escape is not a Unicode scalar value")
    // A space after a backslash that does not end the line is no escape.
    #expect(tomlFailure("x = \"\"\"a\\ b\"\"\"")?.message.hasPrefix("unknown escape sequence") == true)
    // TOML 1.0 has no \e and no \x.
    #expect(tomlFailure(#"x = "\e""#) != nil)
    #expect(tomlFailure(#"x = "\x41""#) != nil)
  }

  @Test func errorsNeverQuoteTheValue() {
    for text in [
      #"x = "secret\qvalue""#, "x = 123secretvalue", "x = truesecretvalue", "x = +inf_secretvalue",
      "x = \"secret\u{1}value\"", "x = [\"secretvalue\" 1]", "x = 0xsecretvalue", "x = 1979-05-27Tsecret",
    ] {
      let message = tomlFailure(text)?.message
      #expect(message != nil, "\(text)")
      #expect(message?.contains("secret") == false, "\(text): \(message ?? "")")
    }
  }
}

@Suite struct TOMLNumberTests {
  @Test func integers() throws {
    #expect(try tomlValue("42") == .integer(42))
    #expect(try tomlValue("+17") == .integer(17))
    #expect(try tomlValue("-17") == .integer(-17))
    #expect(try tomlValue("0") == .integer(0))
    #expect(try tomlValue("-0") == .integer(0))
    #expect(try tomlValue("1_000_000") == .integer(1_000_000))
    #expect(try tomlValue("0xDEAD_beef") == .integer(0xDEAD_BEEF))
    #expect(try tomlValue("0x00ff") == .integer(255))
    #expect(try tomlValue("0o755") == .integer(0o755))
    #expect(try tomlValue("0b1101_0110") == .integer(0b1101_0110))
    #expect(try tomlValue("9223372036854775807") == .integer(.max))
    #expect(try tomlValue("-9223372036854775808") == .integer(.min))
    #expect(try tomlValue("0x7FFFFFFFFFFFFFFF") == .integer(.max))
  }

  @Test func integerErrors() {
    #expect(tomlLocated("x = 0123") == "1:5: leading zeros are not allowed in a number")
    #expect(tomlLocated("x = -01") == "1:5: leading zeros are not allowed in a number")
    #expect(tomlLocated("x = 1__0") == "1:5: an underscore in a number must stand between two digits")
    #expect(tomlLocated("x = 1_") == "1:5: an underscore in a number must stand between two digits")
    #expect(tomlLocated("x = 0x_1") == "1:5: an underscore in a number must stand between two digits")
    #expect(tomlLocated("x = 9223372036854775808") == "1:5: the integer does not fit in 64 bits")
    #expect(tomlLocated("x = -9223372036854775809") == "1:5: the integer does not fit in 64 bits")
    #expect(tomlLocated("x = 0x8000000000000000") == "1:5: the integer does not fit in 64 bits")
    #expect(tomlLocated("x = +0x1") == "1:5: a hexadecimal, octal or binary integer cannot have a sign")
    #expect(tomlLocated("x = 0o8") == "1:5: invalid number")
    #expect(tomlLocated("x = 0b102") == "1:5: invalid number")
    #expect(tomlLocated("x = 0x") == "1:5: invalid number: digits expected")
    #expect(tomlLocated("x = 12abc") == "1:5: invalid number")
    #expect(tomlLocated("x = 1 2") == "1:7: expected the end of the line after the value")
  }

  @Test func floats() throws {
    #expect(try tomlValue("3.1415") == .float(3.1415))
    #expect(try tomlValue("-0.01") == .float(-0.01))
    #expect(try tomlValue("+1.0") == .float(1))
    #expect(try tomlValue("5e+22") == .float(5e22))
    #expect(try tomlValue("1e06") == .float(1e6))
    #expect(try tomlValue("-2E-2") == .float(-0.02))
    #expect(try tomlValue("6.626e-34") == .float(6.626e-34))
    #expect(try tomlValue("224_617.445_991_228") == .float(224_617.445_991_228))
    #expect(try tomlValue("0e0") == .float(0))
    #expect(try tomlValue("inf") == .float(.infinity))
    #expect(try tomlValue("+inf") == .float(.infinity))
    #expect(try tomlValue("-inf") == .float(-.infinity))
    #expect(try #require(TOMLValue(try tomlValue("nan"), line: 1).double).isNaN)
    #expect(try #require(TOMLValue(try tomlValue("-nan"), line: 1).double).isNaN)
  }

  @Test func floatErrors() {
    #expect(tomlLocated("x = 1.") == "1:5: invalid number: digits expected")
    #expect(tomlLocated("x = 3.e+20") == "1:5: invalid number: digits expected")
    #expect(tomlLocated("x = 1e") == "1:5: invalid number: digits expected")
    #expect(tomlLocated("x = 1.5_") == "1:5: an underscore in a number must stand between two digits")
    #expect(tomlLocated("x = 1.2.3") == "1:5: invalid number")
    #expect(tomlLocated("x = 01.5") == "1:5: leading zeros are not allowed in a number")
    #expect(tomlLocated("x = infinity")?.hasPrefix("1:5: expected a value") == true)
    #expect(tomlLocated("x = null")?.hasPrefix("1:5: expected a value") == true)
    #expect(tomlLocated("x = -") == "1:5: invalid number")
    #expect(tomlLocated("x = +_1")?.hasPrefix("1:5: expected a value") == true)
    #expect(tomlLocated("x = .5")?.hasPrefix("1:5: expected a value") == true)
  }

  @Test func booleans() throws {
    #expect(try tomlValue("true") == .boolean(true))
    #expect(try tomlValue("false") == .boolean(false))
    #expect(tomlLocated("x = True")?.hasPrefix("1:5: expected a value") == true)
    #expect(tomlLocated("x = truex")?.hasPrefix("1:5: expected a value") == true)
    #expect(tomlLocated("x = yes")?.hasPrefix("1:5: expected a value") == true)
  }
}

@Suite struct TOMLDateTimeTests {
  @Test func dateTimesKeepTheirText() throws {
    #expect(try tomlValue("1979-05-27T07:32:00Z") == .offsetDateTime("1979-05-27T07:32:00Z"))
    #expect(try tomlValue("1979-05-27T00:32:00-07:00") == .offsetDateTime("1979-05-27T00:32:00-07:00"))
    #expect(
      try tomlValue("1979-05-27T00:32:00.999999+05:30") == .offsetDateTime("1979-05-27T00:32:00.999999+05:30")
    )
    #expect(try tomlValue("1979-05-27 07:32:00z") == .offsetDateTime("1979-05-27 07:32:00z"))
    #expect(try tomlValue("1979-05-27t07:32:00") == .localDateTime("1979-05-27t07:32:00"))
    #expect(try tomlValue("1979-05-27T00:32:00.5") == .localDateTime("1979-05-27T00:32:00.5"))
    #expect(try tomlValue("1979-05-27") == .localDate("1979-05-27"))
    #expect(try tomlValue("2000-02-29") == .localDate("2000-02-29"))
    #expect(try tomlValue("07:32:00") == .localTime("07:32:00"))
    #expect(try tomlValue("00:32:00.999999") == .localTime("00:32:00.999999"))
    // A date followed by a comment is a date.
    let root = try TOMLParser.parse("d = 1979-05-27 # birthday\nt = 1979-05-27 07:32:00")
    #expect(root["d"]?.kind == .localDate("1979-05-27"))
    #expect(root["t"]?.kind == .localDateTime("1979-05-27 07:32:00"))
  }

  @Test func invalidDatesAndTimes() {
    #expect(tomlLocated("x = 1979-13-01") == "1:5: invalid date: no such day")
    #expect(tomlLocated("x = 1979-02-29") == "1:5: invalid date: no such day")
    #expect(tomlLocated("x = 1900-02-29") == "1:5: invalid date: no such day")
    #expect(tomlLocated("x = 1979-04-31") == "1:5: invalid date: no such day")
    #expect(tomlLocated("x = 1979-00-10") == "1:5: invalid date: no such day")
    #expect(tomlLocated("x = 24:00:00") == "1:5: invalid time: no such time of day")
    #expect(tomlLocated("x = 07:60:00") == "1:5: invalid time: no such time of day")
    #expect(tomlLocated("x = 07:32") == "1:5: invalid date-time")
    #expect(tomlLocated("x = 07:32:00.") == "1:5: invalid time: digits expected after '.'")
    #expect(tomlLocated("x = 1979-05-27T07:32") == "1:5: invalid date-time")
    #expect(tomlLocated("x = 1979-05-27T07:32:00+25:00") == "1:5: invalid date-time: no such offset")
    #expect(tomlLocated("x = 1979-05-27T07:32:00+0100") == "1:5: invalid date-time")
    #expect(tomlLocated("x = 1979-5-27") == "1:5: invalid date-time")
    #expect(tomlLocated("x = 1979-05-27x") == "1:5: invalid date-time")
  }
}

@Suite struct TOMLArrayAndInlineTableTests {
  @Test func arrays() throws {
    let root = try TOMLParser.parse(
      """
      empty = []
      ints = [1, 2, 3]
      mixed = [1, "two", 3.0, [4], { five = 5 }, 1979-05-27]
      nested = [[1, 2], ["a"]]
      multi = [
        "one", # a comment
        # another
        "two",
      ]
      """)
    #expect(root["empty"]?.array == [])
    #expect(root["ints"]?.array?.compactMap(\.int) == [1, 2, 3])
    let mixed = try #require(root["mixed"]?.array)
    #expect(mixed.count == 6)
    #expect(mixed[1].string == "two")
    #expect(mixed[2].double == 3)
    #expect(mixed[3].array?.first?.int == 4)
    #expect(mixed[4].table?["five"]?.int == 5)
    #expect(mixed[5].kind == .localDate("1979-05-27"))
    #expect(root["nested"]?.array?.count == 2)
    let multi = try #require(root["multi"]?.array)
    #expect(multi.map(\.string) == ["one", "two"])
    #expect(multi.map(\.line) == [6, 8])
  }

  @Test func arrayErrors() {
    #expect(tomlLocated("x = [1 2]") == "1:8: expected ',' or ']' after an element of the array")
    #expect(tomlLocated("x = [,]") == "1:6: expected a value or ']' in the array")
    #expect(tomlLocated("x = [1,,2]") == "1:8: expected a value or ']' in the array")
    #expect(tomlLocated("x = [1,\n2") == "2:2: unterminated array (opened at line 1): expected ']'")
    #expect(tomlLocated("x = [") == "1:6: unterminated array (opened at line 1): expected ']'")
  }

  @Test func inlineTables() throws {
    let root = try TOMLParser.parse(
      #"""
      name = { first = "Tom", last = "Preston-Werner" }
      point = {x=1,y=2}
      empty = {}
      nested = { a = { b = { c = true } }, "quoted key" = 1 }
      dotted = { type.name = "pug", type.legs = 4 }
      """#)
    #expect(root["name"]?.table?["first"]?.string == "Tom")
    #expect(root["name"]?.table?.keys == ["first", "last"])
    #expect(root["point"]?.table?["y"]?.int == 2)
    #expect(root["empty"]?.table?.isEmpty == true)
    #expect(root["nested"]?.table?["a"]?.table?["b"]?.table?["c"]?.bool == true)
    #expect(root["nested"]?.table?["quoted key"]?.int == 1)
    let type = try #require(root["dotted"]?.table?["type"]?.table)
    #expect(type["name"]?.string == "pug")
    #expect(type["legs"]?.int == 4)
  }

  @Test func inlineTableErrors() {
    #expect(
      tomlLocated("x = { a = 1,\n b = 2 }")
        == "1:13: unterminated inline table: it must close with '}' on the same line")
    #expect(tomlLocated("x = { a = 1, }") == "1:14: a trailing comma is not allowed in an inline table")
    #expect(
      tomlLocated("x = { a = 1 b = 2 }") == "1:13: expected ',' or '}' after a value in the inline table")
    #expect(tomlLocated("x = { a = 1, a = 2 }") == "1:14: key 'x.a' defined twice (first at line 1)")
    #expect(tomlLocated("x = { a.b = 1, a = 2 }") == "1:16: key 'x.a' defined twice (first at line 1)")
    #expect(
      tomlLocated("x = { a = { b = 1 }, a.c = 2 }")
        == "1:22: cannot add to 'x.a': it is an inline table (line 1), complete as written")
  }

  @Test func inlineTablesAndStaticArraysCannotBeExtended() {
    #expect(
      tomlLocated("a = { b = 1 }\n[a]")
        == "2:1: cannot add to 'a': it is an inline table (line 1), complete as written")
    #expect(
      tomlLocated("a = { b = 1 }\n[a.c]")
        == "2:1: cannot add to 'a': it is an inline table (line 1), complete as written")
    #expect(
      tomlLocated("a = { b = 1 }\na.c = 2")
        == "2:1: cannot add to 'a': it is an inline table (line 1), complete as written")
    #expect(
      tomlLocated("a = [1]\n[[a]]")
        == "2:1: cannot add to 'a': it is a static array (line 1), complete as written")
    #expect(
      tomlLocated("[t]\na = { b = 1 }\n[t.a.c]")
        == "3:1: cannot add to 't.a': it is an inline table (line 2), complete as written")
    #expect(tomlLocated("a = 1\n[a.b]") == "2:1: key 'a' is already an integer (line 1), not a table")
  }
}

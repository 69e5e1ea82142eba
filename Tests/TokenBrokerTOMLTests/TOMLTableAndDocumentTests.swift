import Testing

@testable import TokenBrokerTOML

// MARK: - keys and tables

@Suite struct TOMLKeyAndTableTests {
  @Test func keys() throws {
    let root = try TOMLParser.parse(
      #"""
      bare_key-1 = 1
      "quoted key" = 2
      'literal "key"' = 3
      "" = 4
      "a.b" = 5
      site . "google.com" . up = true
      1234 = 6
      "caf\u00e9" = 7
      """#)
    #expect(root.keys == ["bare_key-1", "quoted key", "literal \"key\"", "", "a.b", "site", "1234", "café"])
    #expect(root[""]?.int == 4)
    #expect(root["a.b"]?.int == 5)
    #expect(root["site"]?.table?["google.com"]?.table?["up"]?.bool == true)
  }

  @Test func keyErrors() {
    #expect(tomlLocated("= 1") == "1:1: " + tomlBareKeyHint)
    #expect(tomlLocated("a.= 1") == "1:3: " + tomlBareKeyHint)
    #expect(tomlLocated("a..b = 1") == "1:3: " + tomlBareKeyHint)
    #expect(tomlLocated("token_url \"x\"") == "1:11: expected '=' after key 'token_url'")
    #expect(tomlLocated("token_url") == "1:10: expected '=' after key 'token_url'")
    #expect(tomlLocated("a.\"b c\" 1") == "1:9: expected '=' after key 'a.\"b c\"'")
    #expect(tomlLocated("x =") == "1:4: expected a value after '=' on the same line")
    #expect(tomlLocated("x = # no value") == "1:5: expected a value after '=' on the same line")
    #expect(tomlLocated("x =\n1") == "1:4: expected a value after '=' on the same line")
    #expect(tomlLocated("\"\"\"k\"\"\" = 1") == "1:1: a key cannot be a multi-line string")
  }

  @Test func tablesAndDottedKeys() throws {
    let root = try TOMLParser.parse(
      """
      [a.b.c]
      x = 1
      [a]
      y = 2
      [a.b]
      z = 3
      [fruit]
      apple.color = "red"
      apple.taste.sweet = true
      [fruit.apple.texture]
      smooth = true
      [dog."tater.man"]
      type.name = "pug"
      """)
    let a = try #require(root["a"]?.table)
    #expect(a["y"]?.int == 2)
    #expect(a["b"]?.table?["z"]?.int == 3)
    #expect(a["b"]?.table?["c"]?.table?["x"]?.int == 1)
    let apple = try #require(root["fruit"]?.table?["apple"]?.table)
    #expect(apple["color"]?.string == "red")
    #expect(apple["taste"]?.table?["sweet"]?.bool == true)
    #expect(apple["texture"]?.table?["smooth"]?.bool == true)
    #expect(root["dog"]?.table?["tater.man"]?.table?["type"]?.table?["name"]?.string == "pug")
  }

  @Test func arraysOfTables() throws {
    let root = try TOMLParser.parse(
      """
      [[products]]
      name = "Hammer"
      sku = 738594937

      [[products]]  # empty

      [[products]]
      name = "Nail"

      [[fruits]]
      name = "apple"
      [fruits.physical]
      color = "red"
      [[fruits.varieties]]
      name = "red delicious"
      [[fruits.varieties]]
      name = "granny smith"

      [[fruits]]
      name = "banana"
      [[fruits.varieties]]
      name = "plantain"
      """)
    #expect(root.entries["products"]?.isArrayOfTables == true)
    let products = try #require(root["products"]?.array)
    #expect(products.map { $0.table?["name"]?.string } == ["Hammer", nil, "Nail"])
    #expect(products.map(\.line) == [1, 5, 7])
    #expect(products[0].table?["sku"]?.int == 738_594_937)
    let fruits = try #require(root["fruits"]?.array)
    #expect(fruits.count == 2)
    let apple = try #require(fruits[0].table)
    #expect(apple["physical"]?.table?["color"]?.string == "red")
    let varieties = apple["varieties"]?.array?.map { $0.table?["name"]?.string }
    #expect(varieties == ["red delicious", "granny smith"])
    #expect(fruits[1].table?["varieties"]?.array?.count == 1)
  }

  @Test func duplicateKeys() {
    #expect(tomlLocated("x = 1\ny = 2\nx = 3") == "3:1: key 'x' defined twice (first at line 1)")
    #expect(
      tomlLocated("[t]\n\n  name = 1\n  name = 2") == "4:3: key 't.name' defined twice (first at line 3)")
    #expect(tomlLocated("a.b = 1\na.b = 2") == "2:1: key 'a.b' defined twice (first at line 1)")
    #expect(tomlLocated("a.b = 1\na = 2") == "2:1: key 'a' defined twice (first at line 1)")
    #expect(tomlLocated("\"x\" = 1\nx = 2") == "2:1: key 'x' defined twice (first at line 1)")
    #expect(tomlLocated("'a b' = 1\n\"a b\" = 2") == "2:1: key '\"a b\"' defined twice (first at line 1)")
    #expect(tomlLocated("[a.b]\n[a]\nb = 1") == "3:1: key 'a.b' defined twice (first at line 1)")
  }

  @Test func tableRedefinition() {
    #expect(tomlLocated("[a]\nx = 1\n\n[a]") == "4:1: table 'a' defined twice (first at line 1)")
    #expect(tomlLocated("[a.b]\n[a]\n[a.b]") == "3:1: table 'a.b' defined twice (first at line 1)")
    #expect(tomlLocated("[a]\n[b]\n[a]") == "3:1: table 'a' defined twice (first at line 1)")
    // Tables made by dotted keys are defined once their section ends.
    #expect(
      tomlLocated("[fruit]\napple.color = \"red\"\n[fruit.apple]")
        == "3:1: table 'fruit.apple' defined twice (first at line 2)")
    #expect(tomlLocated("a.b = 1\n[a]") == "2:1: table 'a' defined twice (first at line 1)")
    #expect(
      tomlLocated("[a.b.c]\nz = 9\n[a]\nb.c.t = 1")
        == "4:1: cannot add to table 'a.b.c' with a dotted key: it is defined at line 1")
    #expect(
      tomlLocated("[a]\nb.c = 1\n[a.d]\n[a]")
        == "4:1: table 'a' defined twice (first at line 1)")
    #expect(
      tomlLocated("[[a]]\n[a]") == "2:1: cannot define table 'a': it is an array of tables (line 1)")
    #expect(
      tomlLocated("[a]\n[[a]]") == "2:1: cannot define 'a' as an array of tables: it is a table (line 1)")
    // Under another table the same names are new keys.
    #expect(tomlFailure("[[a]]\nb = 1\n[x]\na.c = 2\n[x.b]") == nil)
  }

  @Test func dottedKeysCannotReachIntoArraysOfTables() {
    #expect(
      tomlLocated("[[a.b]]\n[a]\nb.c = 1")
        == "3:1: cannot add to 'a.b' with a dotted key: it is an array of tables (line 1)")
  }

  @Test func headerErrors() {
    #expect(tomlLocated("[]") == "1:2: " + tomlBareKeyHint)
    #expect(tomlLocated("[a") == "1:3: expected ']' to close the table header")
    #expect(tomlLocated("[a\nb = 1") == "1:3: expected ']' to close the table header")
    #expect(tomlLocated("[[a]") == "1:4: expected ']]' to close the array-of-tables header")
    #expect(tomlLocated("[[a] ]") == "1:4: expected ']]' to close the array-of-tables header")
    #expect(tomlLocated("[a] b = 1") == "1:5: expected the end of the line after the table header")
    #expect(tomlLocated("[[[a]]]") == "1:3: " + tomlBareKeyHint)
    #expect(tomlLocated("[ a . b ]\n[ [c] ]") == "2:3: " + tomlBareKeyHint)
  }
}

// MARK: - document-level rules

@Suite struct TOMLDocumentTests {
  @Test func theFuzzCrashesAreCleanErrors() {
    #expect(tomlLocated("[é]\n") == "1:2: " + tomlBareKeyHint)
    #expect(tomlLocated("[?") == "1:2: " + tomlBareKeyHint)
    #expect(tomlLocated("x = [\"\",}") == "1:9: expected a value or ']' in the array")
    #expect(
      tomlLocated("allow = [\"user:a\",}\n[é]\ngrant = \"api_key\"\n[?0")
        == "1:19: expected a value or ']' in the array")
  }

  @Test func depthIsCapped() throws {
    let max = TOMLParser.maxDepth
    let ok = String(repeating: "[", count: max) + String(repeating: "]", count: max)
    var inner = try #require(try TOMLParser.parse("x = " + ok)["x"])
    var levels = 1
    while let next = inner.array?.first {
      inner = next
      levels += 1
    }
    #expect(levels == TOMLParser.maxDepth)

    let deep = String(repeating: "[", count: TOMLParser.maxDepth + 1)
    #expect(
      tomlLocated("x = " + deep + String(repeating: "]", count: TOMLParser.maxDepth + 1))
        == "1:69: tables and arrays are nested more than 64 levels deep")
    #expect(
      tomlFailure("x = " + String(repeating: "[", count: 100_000))?.message
        == "tables and arrays are nested more than 64 levels deep")
    #expect(
      tomlFailure("x = " + String(repeating: "{a=", count: 100_000))?.message
        == "tables and arrays are nested more than 64 levels deep")
    #expect(
      tomlFailure("x = " + String(repeating: "[{a=", count: 50_000))?.message
        == "tables and arrays are nested more than 64 levels deep")
    #expect(
      tomlFailure(String(repeating: "a.", count: 100_000) + "a = 1")?.message
        == "the key has more than 64 parts")
    #expect(
      tomlFailure("[" + String(repeating: "a.", count: 100_000) + "a]")?.message
        == "the key has more than 64 parts")
    #expect(tomlFailure(String(repeating: "[", count: 100_000)) != nil)
    // Under a 63-part header, a two-part key is one level too deep.
    let header = "[" + Array(repeating: "t", count: 63).joined(separator: ".") + "]\n"
    #expect(tomlFailure(header + "k = 1") == nil)
    #expect(
      tomlFailure(header + "k.l = 1")?.message == "tables and arrays are nested more than 64 levels deep")
    #expect(tomlFailure(header + "k = []") == nil)
    #expect(
      tomlFailure(header + "k = [[]]")?.message == "tables and arrays are nested more than 64 levels deep")
  }

  @Test func encodingErrors() throws {
    #expect(tomlLocated("a = 1\nb = \"x\u{0}y\"") == "2:7: the document contains a NUL byte")
    let invalid: [UInt8] = Array("a = 1\nb = \"".utf8) + [0xC3, 0x28] + Array("\"".utf8)
    #expect(throws: TOMLError(line: 2, column: 6, message: "the document is not valid UTF-8")) {
      try TOMLParser.parse(bytes: invalid)
    }
    let malformed: [[UInt8]] = [
      [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
    ]
    for bad in malformed {
      #expect(throws: TOMLError.self) { try TOMLParser.parse(bytes: Array("x = '".utf8) + bad + [0x27]) }
    }
    let good = try TOMLParser.parse(bytes: Array("x = 'é€😀'".utf8))
    #expect(good["x"]?.string == "é€😀")
  }

  @Test func newlinesAndComments() throws {
    let root = try TOMLParser.parse("# comment\r\na = 1 # trailing\r\n\r\n[t] # header\r\nb = 2\r\n")
    #expect(root["a"]?.int == 1)
    #expect(root["t"]?.table?["b"]?.int == 2)
    #expect(root.entries["t"]?.line == 4)
    #expect(tomlLocated("a = 1\rb = 2") == "1:6: a carriage return must be followed by a line feed")
    #expect(tomlLocated("# bell \u{7}") == "1:8: control character in a comment")
    #expect(tomlLocated("a = 1 # ok\n# \u{7F}") == "2:3: control character in a comment")
    // Columns count Unicode scalars, not bytes.
    #expect(tomlLocated("k = 'é' x") == "1:9: expected the end of the line after the value")
  }

  @Test func everyValueAndKeyKnowsItsLine() throws {
    let root = try TOMLParser.parse(
      """
      # header comment
      title = "x"

      [server]
      host.name = "a"
      ports = [
        80,
        443,
      ]
      limits = { cpu = 2 }
      [[server.routes]]
      path = "/a"
      [[server.routes]]
      path = "/b"
      """)
    #expect(root.entries["title"]?.line == 2)
    #expect(root["title"]?.line == 2)
    let server = try #require(root.entries["server"])
    #expect(server.line == 4)
    let table = try #require(server.value.table)
    #expect(table.entries["host"]?.line == 5)
    #expect(table["host"]?.table?.entries["name"]?.line == 5)
    #expect(table.entries["ports"]?.line == 6)
    #expect(table["ports"]?.array?.map(\.line) == [7, 8])
    #expect(table["limits"]?.table?.entries["cpu"]?.line == 10)
    #expect(table.entries["routes"]?.line == 11)
    #expect(table["routes"]?.array?.map(\.line) == [11, 13])
    #expect(table["routes"]?.array?.map { $0.table?.entries["path"]?.line } == [12, 14])
    #expect(table.keys == ["host", "ports", "limits", "routes"])
  }

  @Test func aByteOrderMarkIsSkipped() throws {
    let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    let root = try TOMLParser.parse(bytes: bom + Array("a = 1\n".utf8))
    #expect(root["a"]?.int == 1)
    #expect(throws: TOMLError(line: 1, column: 5, message: TOMLParser.expectedValue)) {
      try TOMLParser.parse(bytes: bom + Array("a = ?".utf8))
    }
    // Only at the start.
    #expect(throws: TOMLError.self) { try TOMLParser.parse(bytes: Array("a = 1\n".utf8) + bom) }
  }

  @Test func errorDescription() {
    #expect(
      tomlFailure("a = 1\na = 2")?.description == "line 2, column 1: key 'a' defined twice (first at line 1)")
  }

  @Test func theSpecExampleParses() throws {
    let root = try TOMLParser.parse(
      """
      # This is a TOML document

      title = "TOML Example"

      [owner]
      name = "Tom Preston-Werner"
      dob = 1979-05-27T07:32:00-08:00

      [database]
      enabled = true
      ports = [ 8000, 8001, 8002 ]
      data = [ ["delta", "phi"], [3.14] ]
      temp_targets = { cpu = 79.5, case = 72.0 }

      [servers]

      [servers.alpha]
      ip = "10.0.0.1"
      role = "frontend"

      [servers.beta]
      ip = "10.0.0.2"
      role = "backend"
      """)
    #expect(root.keys == ["title", "owner", "database", "servers"])
    #expect(root["owner"]?.table?["dob"]?.kind == .offsetDateTime("1979-05-27T07:32:00-08:00"))
    #expect(root["database"]?.table?["temp_targets"]?.table?["case"]?.double == 72)
    #expect(root["database"]?.table?["data"]?.array?[0].array?.compactMap(\.string) == ["delta", "phi"])
    #expect(root["servers"]?.table?["beta"]?.table?["role"]?.string == "backend")
  }
}

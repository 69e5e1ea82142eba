import Testing

@testable import TokenBrokerCore

@Suite struct ScopeSetTests {
  @Test func normalisedSortedUniqueWithoutEmpties() {
    #expect(
      ScopeSet(["write:sites", "read:sites", "", "write:sites", "admin"]).scopes == [
        "admin", "read:sites", "write:sites",
      ])
    #expect(ScopeSet([String]()).scopes == [])
    #expect(ScopeSet(["", ""]).scopes == [])
  }

  @Test(arguments: ["a b", "a+b", "b a", "b+a", " a  b ", "a+ +b", "a b a", "b+a a"])
  func parsing(_ text: String) {
    #expect(ScopeSet(parsing: text).scopes == ["a", "b"])
  }

  @Test func parsingEmpty() {
    #expect(ScopeSet(parsing: "").scopes == [])
    #expect(ScopeSet(parsing: "  + ").scopes == [])
  }

  @Test func parsingKeepsColonsAndDots() {
    #expect(ScopeSet(parsing: "read:sites mqtt.read").scopes == ["mqtt.read", "read:sites"])
  }

  @Test func equalSetsAreOneCacheKey() {
    let a = ScopeSet(parsing: "read:assets read:sites")
    let b = ScopeSet(["read:sites", "read:assets", "read:sites"])
    #expect(a == b)
    #expect(Set([a, b]).count == 1)
    #expect(a != ScopeSet(["read:sites"]))
  }

  @Test func description() {
    #expect(ScopeSet(parsing: "b a").description == "a b")
    #expect(ScopeSet([String]()).description == "")
  }

  @Test func outsideAllowed() {
    let s = ScopeSet(parsing: "admin read:sites write:sites")
    #expect(s.outside(["read:sites", "read:assets"]) == ["admin", "write:sites"])
    #expect(s.outside(["admin", "read:sites", "write:sites"]) == [])
    #expect(s.outside([]) == ["admin", "read:sites", "write:sites"])
    #expect(ScopeSet([String]()).outside([]) == [])
  }

  @Test func outsideIsCaseSensitive() {
    #expect(ScopeSet(["Read:Sites"]).outside(["read:sites"]) == ["Read:Sites"])
  }
}

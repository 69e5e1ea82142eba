import Testing

@testable import TokenBrokerCore

private let providers = ["energy", "placeos", "powernaut", "powerverse"]

@Suite struct SuggestionTests {
  @Test(arguments: [
    ("enrgy", "energy"),
    ("energie", "energy"),
    ("placeso", "placeos"),
    ("powernat", "powernaut"),
    ("powervers", "powerverse"),
    ("powerversee", "powerverse"),
  ])
  func typosWithinTwoEdits(_ word: String, _ expected: String) {
    #expect(Suggestion.closest(to: word, in: providers) == expected)
  }

  @Test func caseInsensitiveMatchWins() {
    #expect(Suggestion.closest(to: "ENERGY", in: providers) == "energy")
    #expect(Suggestion.closest(to: "PowerNaut", in: providers) == "powernaut")
  }

  @Test func exactNameIsItsOwnSuggestion() {
    #expect(Suggestion.closest(to: "placeos", in: providers) == "placeos")
  }

  @Test func nothingCloseEnough() {
    #expect(Suggestion.closest(to: "scheduler", in: providers) == nil)
    #expect(Suggestion.closest(to: "enxxxy", in: providers) == nil)
    #expect(Suggestion.closest(to: "energy", in: []) == nil)
  }

  @Test func closestOfSeveralCandidates() {
    #expect(Suggestion.closest(to: "abcd", in: ["abxy", "abcx"]) == "abcx")
    #expect(Suggestion.closest(to: "abcd", in: ["abcx", "abxy"]) == "abcx")
  }

  @Test func tiesGoToTheEarlierCandidate() {
    #expect(Suggestion.closest(to: "ab", in: ["ax", "ay"]) == "ax")
    #expect(Suggestion.closest(to: "ab", in: ["ay", "ax"]) == "ay")
  }

  @Test func editDistance() {
    #expect(ConfigDidYouMean.distance("kitten", "sitting") == 3)
    #expect(ConfigDidYouMean.distance("", "abc") == 3)
    #expect(ConfigDidYouMean.distance("abc", "") == 3)
    #expect(ConfigDidYouMean.distance("same", "same") == 0)
    #expect(ConfigDidYouMean.distance("ab", "ba") == 2)
  }
}

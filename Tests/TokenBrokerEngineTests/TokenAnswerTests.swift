import Testing
import TokenBrokerCore

@testable import TokenBrokerEngine

/// The rendered answer of a cached token: `expires_in` as the whole seconds left at the time
/// asked, whichever times were asked before (the body of a second is rendered once and shared).
struct TokenAnswerTests {
  static func expiresIn(_ body: [UInt8]) -> JSONValue? { JSONValue.parse(body)?["expires_in"] }

  @Test func expiresInIsTheWholeSecondsLeftAtEachTimeAsked() {
    let token = Token(
      accessToken: "at-1", tokenType: "Bearer", issuedAt: 1000, expiresAt: 1600, scope: ["read"])
    let answer = TokenAnswer(
      token,
      provider: ProviderConfig(name: "p", tokenURL: "https://id.example/token", grant: .clientCredentials))
    for (now, left) in [
      (1000.0, 600.0), (1000.4, 599), (1000.9, 599), (1001.0, 599), (1000.0, 600), (1599.5, 0),
    ] {
      #expect(Self.expiresIn(answer.json(now: now)) == .number(left), "at \(now)")
    }
    let body = answer.json(now: 1010)
    #expect(JSONValue.parse(body)?["access_token"] == .string("at-1"))
    #expect(body.last == 0x0A)
  }

  @Test func anAPIKeyHasNoExpiry() {
    let key = Token(accessToken: "k-1", tokenType: "api_key", issuedAt: 0, expiresAt: nil, scope: [])
    let answer = TokenAnswer(key, provider: ProviderConfig(name: "k", tokenURL: "", grant: .apiKey))
    #expect(Self.expiresIn(answer.json(now: 5)) == .null)
    #expect(answer.json(now: 5) == answer.json(now: 99_999))
  }
}

import Testing

@testable import TokenBrokerCore

/// What a request to an upstream endpoint is made of: where to connect, what to send as
/// `Host:` and the request target, and whether the certificate is checked by name or address.
@Suite struct EndpointURLTests {
  static func url(_ text: String) throws -> EndpointURL { try EndpointURL.parse(text).get() }

  @Test func aNameWithTheSchemesPort() throws {
    let u = try Self.url("https://Auth.Example.com/oauth/token?x=1")
    #expect(u.scheme == "https" && u.host == "auth.example.com" && u.port == nil)
    #expect(u.effectivePort == 443 && u.connectHost == "auth.example.com" && !u.isIPAddress)
    #expect(u.authority == "auth.example.com" && u.rest == "/oauth/token?x=1")
  }

  @Test func addressesAndWrittenPorts() throws {
    let v4 = try Self.url("http://127.0.0.1:8080")
    #expect(v4.effectivePort == 8080 && v4.isIPAddress && v4.rest == "/" && v4.authority == "127.0.0.1:8080")
    let v6 = try Self.url("http://[::1]:9000/t")
    #expect(
      v6.connectHost == "::1" && v6.isIPAddress && v6.authority == "[::1]:9000" && v6.effectivePort == 9000)
    let query = try Self.url("https://a.example?only=query")
    #expect(query.rest == "/?only=query")
  }

  @Test func whatATokenURLMayNotBeIsRefusedWithTheSameWords() {
    for text in [
      "ftp://a.example/t", "https://user@a.example/t", "http://a.example/t", "https://a.example/t#f",
    ] {
      guard case .failure(let problem) = EndpointURL.parse(text),
        case .failure(let expected) = ConfigReader.checkTokenURL(text)
      else {
        Issue.record("\(text) was accepted")
        continue
      }
      #expect(problem.message == expected.message)
    }
  }
}

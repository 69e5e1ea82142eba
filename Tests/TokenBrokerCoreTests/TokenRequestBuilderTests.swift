import Foundation
import Testing

@testable import TokenBrokerCore

private let userAgent = "token-broker/1.0"
private let requestID = "req-0001"

private func build(
  _ p: ProviderConfig, _ secrets: ResolvedSecrets, grant: RequestGrant = .primary, scopes: [String] = []
) -> TokenRequest {
  TokenRequestBuilder.build(
    provider: p, secrets: secrets, grant: grant, scopes: scopes, requestID: requestID, userAgent: userAgent)
}

/// Every header as `Name: value`, sorted, so a missing or extra header shows.
private func headerLines(_ r: TokenRequest) -> [String] {
  r.headers.map { "\($0.name): \($0.value)" }.sorted()
}

private func bodyText(_ r: TokenRequest) -> String {
  String(decoding: r.body, as: UTF8.self)
}

private func basic(_ id: String, _ secret: String) -> String {
  "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()
}

/// The energy-data API: client_credentials, HTTP Basic, form body.
private func energy() -> ProviderConfig {
  var p = ProviderConfig(
    name: "energy", tokenURL: "https://api.example-energy.com/oauth/v2/token", grant: .clientCredentials)
  p.clientID = "my-client"
  return p
}

/// Powerverse: JSON bodies.
private func powerverse(_ grant: Grant) -> ProviderConfig {
  var p = ProviderConfig(
    name: "powerverse", tokenURL: "https://platform.powerverse.com/auth/token", grant: grant)
  p.body = .json
  p.clientID = "your-client-id"
  switch grant {
  case .password:
    p.clientAuth = .none
    p.username = "operator@example.com"
  default:
    p.clientAuth = .clientSecretPost
  }
  return p
}

/// Powernaut: HTTP Basic and no body at all.
private func powernaut() -> ProviderConfig {
  var p = ProviderConfig(
    name: "powernaut", tokenURL: "https://api.powernaut.io/v1/auth/token", grant: .clientCredentials)
  p.body = .none
  p.clientID = "pn-id"
  return p
}

@Suite struct TokenRequestBuilderTests {
  // MARK: energy (Basic + form)

  @Test func energyClientCredentials() {
    let r = build(energy(), ResolvedSecrets(clientSecret: "s3cret"))
    #expect(r.url == "https://api.example-energy.com/oauth/v2/token")
    #expect(r.method == "POST")
    #expect(
      headerLines(r) == [
        "Accept: application/json",
        "Authorization: Basic bXktY2xpZW50OnMzY3JldA==",
        "Content-Type: application/x-www-form-urlencoded",
        "User-Agent: token-broker/1.0",
        "X-Request-ID: req-0001",
      ])
    #expect(bodyText(r) == "grant_type=client_credentials")
    #expect(r.usesRefreshToken == false)
    #expect(r.header("authorization") == basic("my-client", "s3cret"))
    #expect(r.header("CONTENT-TYPE") == "application/x-www-form-urlencoded")
    #expect(r.header("X-Missing") == nil)
  }

  @Test func energyWithScopes() {
    let r = build(energy(), ResolvedSecrets(clientSecret: "s3cret"), scopes: ["a", "b"])
    #expect(bodyText(r) == "grant_type=client_credentials&scope=a%20b")
  }

  /// Defence in depth for `?scope=+` (security review H3): an empty set never sends a
  /// request without `scope` for a provider that has configured scopes.
  @Test func emptyScopeSetFallsBackToTheConfiguredScopes() {
    var p = energy()
    p.scopes = ["read:sites", "read:assets"]
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret"), scopes: [])
    #expect(bodyText(r) == "grant_type=client_credentials&scope=read%3Asites%20read%3Aassets")
    let asked = build(p, ResolvedSecrets(clientSecret: "s3cret"), scopes: ["read:sites"])
    #expect(bodyText(asked) == "grant_type=client_credentials&scope=read%3Asites")
    #expect(
      bodyText(build(energy(), ResolvedSecrets(clientSecret: "s3cret"))) == "grant_type=client_credentials")
  }

  @Test func basicCredentialsAreBase64OfIDColonSecret() {
    var p = energy()
    p.clientID = "id:with:colons"
    let r = build(p, ResolvedSecrets(clientSecret: "pä$$ w0rd"))
    #expect(
      r.header("Authorization") == "Basic " + Data("id:with:colons:pä$$ w0rd".utf8).base64EncodedString())
  }

  // MARK: Powerverse (JSON)

  @Test func powerverseClientCredentials() {
    let r = build(powerverse(.clientCredentials), ResolvedSecrets(clientSecret: "your-client-secret"))
    #expect(r.url == "https://platform.powerverse.com/auth/token")
    #expect(
      bodyText(r)
        == #"{"grant_type":"client_credentials","client_id":"your-client-id","client_secret":"your-client-secret"}"#
    )
    #expect(
      headerLines(r) == [
        "Accept: application/json",
        "Content-Type: application/json",
        "User-Agent: token-broker/1.0",
        "X-Request-ID: req-0001",
      ])
    #expect(r.header("Authorization") == nil)
    #expect(r.usesRefreshToken == false)
  }

  @Test func powerversePassword() {
    let r = build(
      powerverse(.password), ResolvedSecrets(password: "your-password"),
      scopes: ["read:sites", "read:assets"])
    #expect(
      bodyText(r)
        == #"{"grant_type":"password","username":"operator@example.com","password":"your-password","#
        + #""client_id":"your-client-id","scope":"read:sites read:assets"}"#)
    #expect(
      headerLines(r) == [
        "Accept: application/json",
        "Content-Type: application/json",
        "User-Agent: token-broker/1.0",
        "X-Request-ID: req-0001",
      ])
    #expect(r.header("Authorization") == nil)
  }

  @Test func powerverseRefresh() {
    let r = build(powerverse(.password), ResolvedSecrets(password: "your-password"), grant: .refresh("rt_x"))
    #expect(
      bodyText(r) == #"{"grant_type":"refresh_token","refresh_token":"rt_x","client_id":"your-client-id"}"#)
    #expect(r.usesRefreshToken)
    #expect(!bodyText(r).contains("your-password"))
  }

  @Test func clientSecretPostWithFormBody() {
    var p = energy()
    p.clientAuth = .clientSecretPost
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret"))
    #expect(bodyText(r) == "grant_type=client_credentials&client_id=my-client&client_secret=s3cret")
    #expect(r.header("Authorization") == nil)
  }

  @Test func clientAuthNoneWithoutClientID() {
    var p = powerverse(.password)
    p.clientID = nil
    let r = build(p, ResolvedSecrets(password: "pw"))
    #expect(bodyText(r) == #"{"grant_type":"password","username":"operator@example.com","password":"pw"}"#)
  }

  // MARK: Powernaut (Basic, no body)

  @Test func powernautBasicWithoutBody() {
    let r = build(powernaut(), ResolvedSecrets(clientSecret: "pn-secret"))
    #expect(r.url == "https://api.powernaut.io/v1/auth/token")
    #expect(r.method == "POST")
    #expect(r.body.isEmpty)
    #expect(
      headerLines(r) == [
        "Accept: application/json",
        "Authorization: \(basic("pn-id", "pn-secret"))",
        "User-Agent: token-broker/1.0",
        "X-Request-ID: req-0001",
      ])
    #expect(r.header("Content-Type") == nil)
  }

  @Test func noBodyPutsParamsOnTheQueryButNoGrantType() {
    var p = powernaut()
    p.params = ["audience": "https://api.powernaut.io/", "tenant": "a b"]
    let r = build(p, ResolvedSecrets(clientSecret: "pn-secret"), scopes: ["x"])
    #expect(
      r.url
        == "https://api.powernaut.io/v1/auth/token?audience=https%3A%2F%2Fapi.powernaut.io%2F&tenant=a%20b")
    #expect(r.body.isEmpty)
    #expect(!r.url.contains("grant_type"))
    #expect(!r.url.contains("pn-secret"))
  }

  @Test func noBodyAppendsToAnExistingQuery() {
    var p = powernaut()
    p.tokenURL = "https://api.powernaut.io/v1/auth/token?v=2"
    p.params = ["audience": "x"]
    let r = build(p, ResolvedSecrets(clientSecret: "pn-secret"))
    #expect(r.url == "https://api.powernaut.io/v1/auth/token?v=2&audience=x")
  }

  // MARK: refresh grants

  @Test func refreshGrantWithFormBody() {
    let r = build(energy(), ResolvedSecrets(clientSecret: "s3cret"), grant: .refresh("rt_x"))
    #expect(bodyText(r) == "grant_type=refresh_token&refresh_token=rt_x")
    #expect(r.usesRefreshToken)
    #expect(r.header("Authorization") == "Basic bXktY2xpZW50OnMzY3JldA==")
  }

  @Test func refreshGrantWithScopes() {
    let r = build(
      energy(), ResolvedSecrets(clientSecret: "s3cret"), grant: .refresh("rt_x"), scopes: ["read:sites"])
    #expect(bodyText(r) == "grant_type=refresh_token&refresh_token=rt_x&scope=read%3Asites")
  }

  @Test func refreshTokenProviderPrimaryGrantUsesTheConfiguredToken() {
    var p = energy()
    p.grant = .refreshToken
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret", refreshToken: "rt_first"))
    #expect(bodyText(r) == "grant_type=refresh_token&refresh_token=rt_first")
  }

  @Test func requestGrantUsesRefreshToken() {
    #expect(RequestGrant.refresh("x").usesRefreshToken)
    #expect(!RequestGrant.primary.usesRefreshToken)
  }

  // MARK: params and headers

  @Test func paramsAppendedToFormBodyInKeyOrder() {
    var p = energy()
    p.params = ["resource": "r1", "audience": "https://api.example.com"]
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret"), scopes: ["s"])
    #expect(
      bodyText(r)
        == "grant_type=client_credentials&scope=s&audience=https%3A%2F%2Fapi.example.com&resource=r1")
  }

  @Test func paramsAppendedToJSONBody() {
    var p = powerverse(.clientCredentials)
    p.params = ["audience": "pv"]
    let r = build(p, ResolvedSecrets(clientSecret: "sec"))
    #expect(
      bodyText(r)
        == #"{"grant_type":"client_credentials","client_id":"your-client-id","client_secret":"sec","audience":"pv"}"#
    )
  }

  @Test func paramsNeverOverrideBuiltInFields() {
    var p = energy()
    p.params = ["grant_type": "password", "scope": "admin", "extra": "1"]
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret"), scopes: ["s"])
    #expect(bodyText(r) == "grant_type=client_credentials&scope=s&extra=1")
  }

  @Test func configHeadersAppended() {
    var p = energy()
    p.headers = ["X-Client-Version": "1.0.0", "X-Tenant": "t1"]
    let r = build(p, ResolvedSecrets(clientSecret: "s3cret"))
    #expect(
      headerLines(r) == [
        "Accept: application/json",
        "Authorization: Basic bXktY2xpZW50OnMzY3JldA==",
        "Content-Type: application/x-www-form-urlencoded",
        "User-Agent: token-broker/1.0",
        "X-Client-Version: 1.0.0",
        "X-Request-ID: req-0001",
        "X-Tenant: t1",
      ])
  }

  @Test func userAgentAndRequestIDAreThoseGiven() {
    let r = TokenRequestBuilder.build(
      provider: energy(), secrets: ResolvedSecrets(clientSecret: "s"), grant: .primary, scopes: [],
      requestID: "8f14e45f-ceea-467f-a0e6-1c2d3e4f5a6b", userAgent: "token-broker/2.3.4 (linux)")
    #expect(r.header("User-Agent") == "token-broker/2.3.4 (linux)")
    #expect(r.header("X-Request-ID") == "8f14e45f-ceea-467f-a0e6-1c2d3e4f5a6b")
  }

  // MARK: encodings

  @Test func formEncodingOfReservedCharacters() {
    #expect(
      TokenRequestBuilder.formEncode([("k", "a b&c=d+e/f?g#h%i:j@k,l;m")])
        == "k=a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25i%3Aj%40k%2Cl%3Bm")
    #expect(TokenRequestBuilder.formEncode([("unreserved", "AZaz09-._~")]) == "unreserved=AZaz09-._~")
    #expect(TokenRequestBuilder.formEncode([("u", "é€\n\"")]) == "u=%C3%A9%E2%82%AC%0A%22")
    #expect(TokenRequestBuilder.formEncode([("a b", "1"), ("c", "")]) == "a%20b=1&c=")
    #expect(TokenRequestBuilder.formEncode([]) == "")
  }

  @Test func passwordFormEncoded() {
    var p = energy()
    p.grant = .password
    p.username = "me+you@example.com"
    let r = build(p, ResolvedSecrets(clientSecret: "s", password: "p@ss w&rd=%"))
    #expect(
      bodyText(r) == "grant_type=password&username=me%2Byou%40example.com&password=p%40ss%20w%26rd%3D%25")
  }

  @Test func jsonEscaping() {
    var p = powerverse(.password)
    p.username = #"quo"te\back/slash"#
    let r = build(p, ResolvedSecrets(password: "line\nbreak\ttab\r\u{01}\u{1F}é"))
    #expect(
      bodyText(r)
        == #"{"grant_type":"password","username":"quo\"te\\back/slash","#
        + #""password":"line\nbreak\ttab\r\u0001\u001fé","client_id":"your-client-id"}"#)
    let decoded = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: String]
    #expect(decoded?["username"] == #"quo"te\back/slash"#)
    #expect(decoded?["password"] == "line\nbreak\ttab\r\u{01}\u{1F}é")
  }

  // MARK: no secrets in descriptions

  @Test func descriptionsNeverShowSecrets() {
    let secrets = ResolvedSecrets(
      clientSecret: "CS-secret-1", password: "PW-secret-2", refreshToken: "RT-secret-3", apiKey: "AK-secret-4"
    )
    var p = powerverse(.password)
    p.clientAuth = .clientSecretPost
    let requests = [
      build(p, secrets), build(p, secrets, grant: .refresh("RT-rotated-5")),
      build(energy(), secrets), build(powernaut(), secrets),
    ]
    for r in requests {
      let text = "\(r)"
      for secret in ["CS-secret-1", "PW-secret-2", "RT-secret-3", "AK-secret-4", "RT-rotated-5"] {
        #expect(!text.contains(secret))
      }
      #expect(!text.contains("Basic"))
      #expect(text.hasPrefix("TokenRequest(POST https://"))
    }
    #expect("\(requests[0])".contains("\(requests[0].body.count) body bytes"))
    let s = "\(secrets)"
    #expect(s == "ResolvedSecrets(client_secret, password, refresh_token, api_key)")
    #expect(secrets.values == ["CS-secret-1", "PW-secret-2", "RT-secret-3", "AK-secret-4"])
    #expect("\(ResolvedSecrets())" == "ResolvedSecrets()")
  }

  @Test func requestEqualityComparesHeadersInOrder() {
    let a = build(energy(), ResolvedSecrets(clientSecret: "s"))
    var b = a
    #expect(a == b)
    b.headers.reverse()
    #expect(a != b)
  }
}

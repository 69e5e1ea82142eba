import Testing

@testable import TokenBrokerCore

/// The login, revocation and inspection keys of a provider (README "Configuration").
@Suite struct ConfigLoginKeysTests {
  func parse(_ text: String) throws(ConfigError) -> BrokerConfig { try ConfigText.parse(text) }
  func problems(_ text: String) -> [String] { ConfigText.problems(text) }

  static let pv = """
    [providers.pv]
    token_url = "https://auth.powerverse.com/oauth2/token"
    grant = "authorization_code"
    client_auth = "client_secret_post"
    client_id = "cid"
    client_secret = { file = "/etc/token-broker/secrets/pv" }
    scopes = ["read:sites"]

    """

  @Test func anAuthorizationCodeProviderReadsEveryLoginKey() throws {
    let config = try parse(
      Self.pv + """
        authorize_url = "https://auth.powerverse.com/oauth2/authorize"
        redirect_uri = "http://127.0.0.1:8400/callback"
        authorize_params = { prompt = "consent" }
        device_authorization_url = "https://auth.powerverse.com/oauth2/device"
        revocation_url = "https://auth.powerverse.com/oauth2/revoke"
        introspection_url = "https://auth.powerverse.com/oauth2/introspect"
        introspection_method = "bearer_query"
        """)
    let login = try #require(config.providers.first).login
    #expect(login.authorizeURL == "https://auth.powerverse.com/oauth2/authorize")
    #expect(login.redirectURI == "http://127.0.0.1:8400/callback")
    #expect(login.authorizeParams == ["prompt": "consent"])
    #expect(login.deviceAuthorizationURL == "https://auth.powerverse.com/oauth2/device")
    #expect(login.revocationURL == "https://auth.powerverse.com/oauth2/revoke")
    #expect(login.introspectionMethod == .bearerQuery)
  }

  @Test func theDefaultRedirectIsAPortlessLoopbackURI() throws {
    let config = try parse(Self.pv + #"authorize_url = "https://a.example/authorize""#)
    #expect(config.providers.first?.login.redirectURI == "http://127.0.0.1/callback")
  }

  @Test func anAuthorizationCodeProviderWithoutALoginEndpointIsRefused() {
    #expect(
      problems(Self.pv) == [
        "1: providers.pv.authorize_url: missing; grant \"authorization_code\" needs authorize_url (or device_authorization_url) for `tokenctl login`, e.g. authorize_url = \"https://auth.example.com/oauth/authorize\""
      ])
  }

  @Test func badLoginKeysAreNamedWithWhatToDo() {
    let found = problems(
      Self.pv + """
        authorize_url = "http://auth.example.com/authorize"
        redirect_uri = "http://192.0.2.1/callback"
        authorize_params = { state = "fixed" }
        introspection_method = "magic"
        """)
    #expect(found.count == 5)
    #expect(
      found.contains { $0.contains("providers.pv.authorize_url: http:// is only allowed for loopback") })
    #expect(found.contains { $0.contains("providers.pv.redirect_uri: http:// is only allowed for loopback") })
    #expect(found.contains { $0.contains("providers.pv.authorize_params.state: set by the broker") })
    #expect(found.contains { $0.contains("providers.pv.introspection_method: unknown introspection_method") })
    #expect(found.contains { $0.contains("introspection_method: needs introspection_url") })
  }

  @Test func loginKeysAreRefusedWhereTheGrantCannotUseThem() {
    let text = """
      [providers.cc]
      token_url = "https://a.example/token"
      grant = "client_credentials"
      client_id = "id"
      client_secret = { file = "/s" }
      authorize_url = "https://a.example/authorize"
      revocation_url = "https://a.example/revoke"
      """
    #expect(
      problems(text) == ["6: providers.cc.authorize_url: not used by grant \"client_credentials\"; remove it"]
    )
  }

  @Test func aRefreshTokenProviderWithALoginEndpointNeedsNoSeed() {
    let text = """
      [providers.rt]
      token_url = "https://a.example/token"
      grant = "refresh_token"
      client_auth = "none"
      client_id = "id"
      device_authorization_url = "https://a.example/device"
      """
    #expect(problems(text) == [])
  }
}

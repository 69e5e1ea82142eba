import TokenBrokerTOML

/// `[providers.NAME]`.
extension ConfigReader {
  static let providerKeys = [
    "token_url", "grant", "client_auth", "body", "client_id", "client_secret", "username", "password",
    "refresh_token", "api_key", "api_key_header", "scopes", "allowed_scopes", "params", "headers", "allow",
    "ca_file", "min_valid", "authorize_url", "redirect_uri", "authorize_params", "device_authorization_url",
    "revocation_url", "introspection_url", "introspection_method", "fleet",
  ]

  /// Keys of the login flows (README "Logging in"): for grants that live on a refresh token.
  static let loginKeys: Set<String> = [
    "authorize_url", "redirect_uri", "authorize_params", "device_authorization_url",
  ]
  /// Keys of revocation and inspection: for every grant that talks to a token endpoint.
  static let tokenInfoKeys: Set<String> = ["revocation_url", "introspection_url", "introspection_method"]

  /// Keys that mean something for `grant` (besides `grant` and `allow`, which always do).
  static func keysUsed(by grant: Grant) -> Set<String> {
    let endpoint = Set<String>([
      "token_url", "client_auth", "body", "client_id", "client_secret", "scopes", "allowed_scopes", "params",
      "headers", "ca_file", "min_valid", "fleet",
    ]).union(tokenInfoKeys)
    switch grant {
    case .clientCredentials: return endpoint
    case .password: return endpoint.union(["username", "password"])
    case .refreshToken, .authorizationCode: return endpoint.union(["refresh_token"]).union(loginKeys)
    case .apiKey: return ["api_key", "api_key_header"]
    }
  }

  /// Parses one provider; nil when anything in it is wrong (the problems are reported).
  mutating func parseProvider(_ table: TOMLTable, name: String) -> ProviderConfig? {
    let base = ["providers", name]
    let problemsBefore = problems.count
    checkKeys(table, at: base, known: Self.providerKeys)
    func key(_ k: String) -> [String] { base + [k] }
    let grantChoices = Self.choices(Grant.self).joined(separator: ", ")

    var grant: Grant?
    if let value = table["grant"] {
      grant = choice(value, at: key("grant"), what: "grant", as: Grant.self)
    } else {
      report(key("grant"), "missing; set grant to one of: \(grantChoices)")
    }
    let present = Set(Self.providerKeys.filter { table[$0] != nil })
    /// A present key worth validating: used by the grant, or the grant is unknown.
    func wanted(_ k: String) -> Bool {
      guard present.contains(k) else { return false }
      guard let grant else { return true }
      return k == "grant" || k == "allow" || Self.keysUsed(by: grant).contains(k)
    }
    if let grant {
      for k in Self.providerKeys where present.contains(k) && !wanted(k) {
        report(key(k), "not used by grant \"\(grant.rawValue)\"; remove it")
      }
    }

    var clientAuth = ClientAuth.clientSecretBasic
    var clientAuthValid = true
    if wanted("client_auth"), let value = table["client_auth"] {
      let parsed = choice(value, at: key("client_auth"), what: "client_auth", as: ClientAuth.self)
      clientAuth = parsed ?? clientAuth
      clientAuthValid = parsed != nil
    }
    var body = BodyFormat.form
    if wanted("body"), let value = table["body"] {
      body = choice(value, at: key("body"), what: "body", as: BodyFormat.self) ?? body
    }

    var tokenURL = ""
    if wanted("token_url"), let value = table["token_url"] {
      if let text = string(value, at: key("token_url")) {
        tokenURL = checkedTokenURL(text, at: key("token_url")) ?? ""
      }
    } else if grant != .apiKey && !present.contains("token_url") {
      report(
        key("token_url"),
        "missing; set token_url to the token endpoint, e.g. \"https://auth.example.com/oauth/token\"")
    }

    var provider = ProviderConfig(name: name, tokenURL: tokenURL, grant: grant ?? .clientCredentials)
    provider.line = lines.line(of: base)
    provider.clientAuth = clientAuth
    provider.body = body

    if wanted("client_id"), let value = table["client_id"] {
      provider.clientID = string(value, at: key("client_id"))
    }
    if wanted("client_secret"), let value = table["client_secret"] {
      provider.clientSecret = secret(value, at: key("client_secret"))
    }
    if wanted("username"), let value = table["username"] {
      provider.username = string(value, at: key("username"))
    }
    if wanted("password"), let value = table["password"] {
      provider.password = secret(value, at: key("password"))
    }
    if wanted("refresh_token"), let value = table["refresh_token"] {
      provider.refreshToken = secret(value, at: key("refresh_token"))
    }
    if wanted("api_key"), let value = table["api_key"] {
      provider.apiKey = secret(value, at: key("api_key"))
    }
    if wanted("api_key_header"), let value = table["api_key_header"],
      let header = string(value, at: key("api_key_header"))
    {
      if Self.isHeaderToken(header) {
        provider.apiKeyHeader = header
      } else {
        report(key("api_key_header"), "\(Self.quote(header)) is not a valid HTTP header name")
      }
    }
    parseScopes(table, into: &provider, at: base, wanted: wanted)
    if wanted("params"), let value = table["params"], let params = self.params(value, at: key("params")) {
      provider.params = params
    }
    if wanted("headers"), let value = table["headers"], let headers = self.headers(value, at: key("headers"))
    {
      provider.headers = headers
    }
    if wanted("allow"), let value = table["allow"], let allow = principals(value, at: key("allow")) {
      provider.allow = allow
    }
    if wanted("ca_file"), let value = table["ca_file"], let path = absolutePath(value, at: key("ca_file")) {
      provider.caFile = path
    }
    if wanted("min_valid"), let value = table["min_valid"] {
      provider.minValid = minValid(value, at: key("min_valid"))
    }
    if wanted("fleet"), let value = table["fleet"] {
      if let shared = value.bool {
        provider.fleet = shared
      } else {
        wrongType(key("fleet"), expected: "true or false", found: value)
      }
    }
    parseLoginEndpoints(table, into: &provider, at: base, wanted: wanted)

    if let grant {
      checkRequirements(
        grant: grant, clientAuth: clientAuthValid ? clientAuth : nil, body: body,
        present: present, at: base)
    }
    return problems.count == problemsBefore ? provider : nil
  }

  /// What each grant, client_auth and body needs, and what they rule out.
  private mutating func checkRequirements(
    grant: Grant, clientAuth: ClientAuth?, body: BodyFormat, present: Set<String>, at base: [String]
  ) {
    func require(_ k: String, _ why: String) {
      if !present.contains(k) { report(base + [k], "missing; \(why)") }
    }
    switch grant {
    case .clientCredentials:
      break
    case .password:
      require("username", "grant \"password\" needs username and password")
      require(
        "password",
        "grant \"password\" needs username and password, e.g. password = { credential = \"NAME-password\" }")
    case .refreshToken:
      if !present.contains("authorize_url") && !present.contains("device_authorization_url") {
        require(
          "refresh_token",
          "grant \"refresh_token\" needs the first refresh token, e.g. refresh_token = { file = \"...\" }, "
            + "or an authorize_url or device_authorization_url to get one with `tokenctl login`")
      }
    case .authorizationCode:
      if !present.contains("authorize_url") && !present.contains("device_authorization_url") {
        report(
          base + ["authorize_url"],
          "missing; grant \"authorization_code\" needs authorize_url (or device_authorization_url) "
            + "for `tokenctl login`, e.g. authorize_url = \"https://auth.example.com/oauth/authorize\"")
      }
    case .apiKey:
      require("api_key", "grant \"api_key\" needs api_key, e.g. api_key = { env = \"NAME_API_KEY\" }")
      return
    }
    guard let clientAuth else { return }
    switch clientAuth {
    case .clientSecretBasic, .clientSecretPost:
      let why =
        "client_auth \"\(clientAuth.rawValue)\" needs client_id and client_secret "
        + "(use client_auth = \"none\" for a public client)"
      require("client_id", why)
      require("client_secret", why)
    case .none:
      if present.contains("client_secret") {
        report(
          base + ["client_secret"],
          "not used with client_auth \"none\"; remove it, or choose client_secret_basic or client_secret_post"
        )
      }
    }
    if present.contains("body"), body == .none,
      grant != .clientCredentials || clientAuth != .clientSecretBasic
    {
      report(
        base + ["body"],
        "body \"none\" (no request body) needs grant \"client_credentials\" with client_auth "
          + "\"client_secret_basic\"; found grant \"\(grant.rawValue)\" with client_auth \"\(clientAuth.rawValue)\""
      )
    }
  }
}

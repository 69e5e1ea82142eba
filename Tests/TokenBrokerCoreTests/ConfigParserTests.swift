import Foundation
import Testing
import TokenBrokerTOML

@testable import TokenBrokerCore

// MARK: - helpers

private func parse(_ text: String, mode: UInt32? = nil) throws(ConfigError) -> BrokerConfig {
  try ConfigParser.parse(text, path: "broker.toml", fileMode: mode)
}

/// The problems of `text`, each as "LINE: message"; empty when it parses.
private func problems(_ text: String, mode: UInt32? = nil) -> [String] {
  do {
    _ = try parse(text, mode: mode)
    return []
  } catch {
    return error.problems.map { "\($0.line): \($0.message)" }
  }
}

/// A valid client_credentials provider named `energy` (header on line 1), plus `extra` lines.
private func energy(_ extra: String = "", grant: String = "client_credentials") -> String {
  """
  [providers.energy]
  token_url = "https://auth.example.com/oauth/token"
  grant = "\(grant)"
  client_id = "id"
  client_secret = { file = "/etc/token-broker/secrets/energy" }
  \(extra)
  """
}

// MARK: - the shipped example

@Suite struct ExampleConfigTests {
  static let examplePath = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("etc/token-broker/broker.toml").path

  @Test func exampleParsesCleanly() throws {
    let text = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
    let config: BrokerConfig
    do {
      config = try ConfigParser.parse(text, path: Self.examplePath, fileMode: 0o644)
    } catch {
      Issue.record("example does not parse:\n\(error)")
      return
    }
    #expect(config.providers.map(\.name) == ["energy", "placeos", "powernaut", "powerverse"])
    #expect(config.broker.socket == "/run/token-broker.sock")
    #expect(config.broker.admins == [.group("token-broker-admin")])

    let energy = try #require(config.provider(named: "energy"))
    #expect(energy.tokenURL == "https://api.example-energy.com/oauth/v2/token")
    #expect(energy.grant == .clientCredentials)
    #expect(energy.clientAuth == .clientSecretBasic)
    #expect(energy.body == .form)
    #expect(energy.clientSecret == .file("/etc/token-broker/secrets/energy-client-secret"))

    let powerverse = try #require(config.provider(named: "powerverse"))
    #expect(powerverse.tokenURL == "https://platform.powerverse.com/auth/token")
    #expect(powerverse.grant == .password)
    #expect(powerverse.clientAuth == ClientAuth.none)
    #expect(powerverse.body == .json)
    #expect(powerverse.scopes == ["read:sites", "read:assets"])
    #expect(powerverse.password == .credential("powerverse-password"))

    let powernaut = try #require(config.provider(named: "powernaut"))
    #expect(powernaut.tokenURL == "https://api.powernaut.io/v1/auth/token")
    #expect(powernaut.body == BodyFormat.none)
    #expect(powernaut.clientAuth == .clientSecretBasic)

    let placeos = try #require(config.provider(named: "placeos"))
    #expect(placeos.tokenURL == "https://placeos.example.com/auth/oauth/token")
    #expect(placeos.grant == .password)
    #expect(placeos.scopes == ["public"])

    // Every provider's line is its [providers.NAME] header.
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    for provider in config.providers {
      #expect(lines[provider.line - 1] == "[providers.\(provider.name)]")
    }
  }

  @Test func exampleCommentedApiKeyProviderParsesWhenUncommented() throws {
    let text = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
    let uncommented = text.replacingOccurrences(
      of: "# [providers.powerverse_key]", with: "[providers.powerverse_key]"
    )
    .replacingOccurrences(of: "# grant = \"api_key\"", with: "grant = \"api_key\"")
    .replacingOccurrences(of: "# api_key = ", with: "api_key = ")
    .replacingOccurrences(of: "# api_key_header = ", with: "api_key_header = ")
    .replacingOccurrences(of: "# allow = [\"group:energy\"]", with: "allow = [\"group:energy\"]")
    let config = try ConfigParser.parse(uncommented, path: "x", fileMode: 0o600)
    let key = try #require(config.provider(named: "powerverse_key"))
    #expect(key.grant == .apiKey)
    #expect(key.apiKey == .env("POWERVERSE_API_KEY"))
    #expect(key.apiKeyHeader == "X-API-Key")
    #expect(key.tokenURL == "")
  }
}

// MARK: - values and defaults

@Suite struct ConfigValueTests {
  @Test func emptyFileGivesDefaultsAndNoProviders() throws {
    let config = try parse("")
    #expect(config.broker == BrokerSettings())
    #expect(config.providers.isEmpty)
  }

  @Test func everyKeyIsRead() throws {
    let config = try parse(
      """
      [broker]
      socket = "/run/tb.sock"
      socket_group = "tb"
      state_dir = "/var/lib/tb"
      refresh_at = 0.75
      refresh_jitter = 0
      min_valid = 60
      request_timeout = 2.5
      scope_idle_timeout = 60
      admins = ["group:admins", "uid:0"]
      log_level = "debug"
      log_target = "console"

      [providers.placeos]
      token_url = "https://placeos.example.com/auth/oauth/token"
      grant = "password"
      client_auth = "client_secret_post"
      body = "json"
      client_id = "cid"
      client_secret = { env = "PLACEOS_SECRET" }
      username = "bot"
      password = "literal-pass"
      scopes = ["public"]
      allowed_scopes = ["public", "mqtt.read"]
      params = { audience = "placeos" }
      headers = { "X-Client-Version" = "1.0.0" }
      allow = ["user:bot", "group:g", "uid:1001", "gid:1002"]
      ca_file = "/etc/ssl/placeos.pem"
      """, mode: 0o600)
    var broker = BrokerSettings()
    broker.socket = "/run/tb.sock"
    broker.socketGroup = "tb"
    broker.stateDir = "/var/lib/tb"
    broker.refreshAt = 0.75
    broker.refreshJitter = 0
    broker.minValid = 60
    broker.requestTimeout = 2.5
    broker.scopeIdleTimeout = 60
    broker.admins = [.group("admins"), .uid(0)]
    broker.logLevel = .debug
    broker.logTarget = .console
    #expect(config.broker == broker)

    var p = ProviderConfig(
      name: "placeos", tokenURL: "https://placeos.example.com/auth/oauth/token", grant: .password)
    p.clientAuth = .clientSecretPost
    p.body = .json
    p.clientID = "cid"
    p.clientSecret = .env("PLACEOS_SECRET")
    p.username = "bot"
    p.password = .literal("literal-pass")
    p.scopes = ["public"]
    p.allowedScopes = ["public", "mqtt.read"]
    p.params = ["audience": "placeos"]
    p.headers = ["X-Client-Version": "1.0.0"]
    p.allow = [.user("bot"), .group("g"), .uid(1001), .gid(1002)]
    p.caFile = "/etc/ssl/placeos.pem"
    p.line = 14
    #expect(config.providers == [p])
  }

  @Test func providerDefaults() throws {
    let config = try parse(energy())
    let p = try #require(config.provider(named: "energy"))
    #expect(p.clientAuth == .clientSecretBasic)
    #expect(p.body == .form)
    #expect(p.apiKeyHeader == "X-API-Key")
    #expect(p.scopes.isEmpty && p.allowedScopes.isEmpty)
    #expect(p.line == 1)
  }

  @Test func allowedScopesDefaultToScopes() throws {
    let config = try parse(energy(#"scopes = ["read:sites", "read:assets"]"#))
    #expect(config.providers[0].allowedScopes == ["read:sites", "read:assets"])
  }

  @Test func providersSortedAndLinesFromHeaders() throws {
    let config = try parse(
      """
      # comment
      [providers."zeta"]
      grant = "api_key"
      api_key = { credential = "zeta-key" }

      [providers.alpha]
      grant = "api_key"
      api_key = { credential = "alpha-key" }
      """)
    #expect(config.providers.map(\.name) == ["alpha", "zeta"])
    #expect(config.providers.map(\.line) == [6, 2])
  }

  @Test func dottedKeysAndInlineProviderTables() throws {
    let config = try parse(
      """
      providers.one.grant = "api_key"
      providers.one.api_key = { env = "ONE" }
      providers.two.grant = "api_key"
      providers.two.api_key = { env = "TWO" }
      """)
    #expect(config.providers.map(\.name) == ["one", "two"])
    #expect(config.providers.map(\.line) == [1, 3])
    let inline = try parse(
      """
      [providers]
      three = { grant = "api_key", api_key = { env = "THREE" } }
      """)
    #expect(inline.providers.map(\.line) == [2])
  }

  @Test func integersAreAcceptedForNumbers() throws {
    let text = "[broker]\nmin_valid = 45\nrequest_timeout = 300\nscope_idle_timeout = 1"
    let config = try parse(text)
    #expect(config.broker.minValid == 45)
    #expect(config.broker.requestTimeout == 300)
    #expect(config.broker.scopeIdleTimeout == 1)
  }
}

// MARK: - syntax, unknown keys, types

@Suite struct ConfigSyntaxAndKeyTests {
  @Test func syntaxErrorIsOneProblemWithItsLine() {
    let result = problems("[broker]\nsocket = \"/run/x.sock\"\nrefresh_at = = 3\n")
    #expect(result.count == 1)
    #expect(result.first?.hasPrefix("3: TOML syntax error at column ") == true)
  }

  @Test func syntaxErrorsNeverEchoTheValue() {
    for text in [
      "password = 123secretvalue", "password = truesecretvalue", "password = +inf_secretvalue",
      "\n\npassword = \"secret\\qvalue\"",
    ] {
      let result = problems(text)
      #expect(result.count == 1)
      #expect(result.first?.contains("TOML syntax error at column") == true)
      #expect(result.first?.contains("secret") == false, "\(result)")
      #expect(result.first?.contains("saw") == false, "\(result)")
    }
    #expect(problems("\n\npassword = \"secret\\qvalue\"").first?.hasPrefix("3: ") == true)
    #expect(
      problems("password = \"x\\qy\"") == [
        "1: TOML syntax error at column 14: unknown escape sequence in a string "
          + #"(valid: \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX)"#
      ])
    #expect(
      problems("k = 1\nk = 2") == [
        "2: TOML syntax error at column 1: key 'k' defined twice (first at line 1)"
      ])
  }

  @Test func nulByteIsASyntaxError() {
    #expect(
      problems("[broker]\nsocket = \"/run/a\u{0}b\"\n") == [
        "2: TOML syntax error: the file contains a NUL byte"
      ])
  }

  @Test func syntaxErrorDescriptionIsPathLineMessage() {
    do {
      _ = try ConfigParser.parse("a = \n", path: "/etc/token-broker/broker.toml")
      Issue.record("expected an error")
    } catch {
      #expect(error.problems.count == 1)
      #expect(error.description.hasPrefix("/etc/token-broker/broker.toml:1: TOML syntax error"))
    }
  }

  @Test func unknownProviderKeyWithDidYouMean() {
    let text = energy(#"client_secert = "x""#)
    #expect(
      problems(text) == ["6: providers.energy.client_secert: unknown key; did you mean 'client_secret'?"])
  }

  @Test func unknownKeysEverywhere() {
    let text = """
      brokr = 1
      [broker]
      refresh_att = 0.5
      colour = "blue"
      [providers.energy]
      Token_URL = "https://a.example.com/t"
      token_url = "https://a.example.com/t"
      grant = "client_credentials"
      client_id = "id"
      client_secret = { fiel = "/s", file = "/s" }
      """
    #expect(
      problems(text) == [
        "1: brokr: unknown key; did you mean 'broker'?",
        "3: broker.refresh_att: unknown key; did you mean 'refresh_at'?",
        "4: broker.colour: unknown key",
        "6: providers.energy.Token_URL: unknown key; did you mean 'token_url'?",
        "10: providers.energy.client_secret.fiel: unknown key; did you mean 'file'?",
      ])
  }

  @Test func wrongTypesNameKeyExpectedAndFound() {
    let text = """
      [broker]
      refresh_at = "0.8"
      socket = 5
      admins = "group:x"
      log_level = 3
      [providers.energy]
      token_url = "https://a.example.com/t"
      grant = "client_credentials"
      client_id = 42
      client_secret = true
      scopes = "read"
      params = { n = 1 }
      """
    #expect(
      problems(text) == [
        "2: broker.refresh_at: expected a number, found a string",
        "3: broker.socket: expected a string, found an integer",
        "4: broker.admins: expected an array of principals (user:NAME, group:NAME, uid:N or gid:N), found a string",
        "5: broker.log_level: expected a string (one of trace, debug, info, notice, warning, error), found an integer",
        "9: providers.energy.client_id: expected a string, found an integer",
        "10: providers.energy.client_secret: expected a string or a table like "
          + "{ file = \"/etc/token-broker/secrets/NAME\" }, found a boolean",
        "11: providers.energy.scopes: expected an array of strings, found a string",
        "12: providers.energy.params.n: expected a string, found an integer",
      ])
  }

  @Test func tablesWhereTablesAreExpected() {
    #expect(problems("broker = \"x\"") == ["1: broker: expected a table, found a string"])
    #expect(problems("providers = [1]") == ["1: providers: expected a table, found an array"])
    #expect(
      problems("[providers]\nenergy = 3") == ["2: providers.energy: expected a table, found an integer"])
  }

  @Test func nonFiniteNumbersAreRefused() {
    #expect(
      problems("[broker]\nmin_valid = inf") == ["2: broker.min_valid: expected a finite number, found inf"])
  }
}

// MARK: - providers

@Suite struct ConfigProviderTests {
  @Test(arguments: ["Energy", "-energy", "_x", "en ergy", String(repeating: "a", count: 65), "é"])
  func invalidProviderNames(name: String) {
    let quoted = "\"\(name)\""
    let text = "[providers.\(quoted)]\ngrant = \"api_key\"\napi_key = { env = \"K\" }\n"
    let result = problems(text)
    #expect(result.count == 1)
    #expect(result.first?.hasPrefix("1: providers.") == true)
    #expect(
      result.first?.hasSuffix(
        ": invalid provider name; use 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or a digit"
      )
        == true)
  }

  @Test(arguments: ["a", "0", "energy-2", "my_provider", String(repeating: "a", count: 64)])
  func validProviderNames(name: String) throws {
    let config = try parse("[providers.\(name)]\ngrant = \"api_key\"\napi_key = { env = \"K\" }\n")
    #expect(config.providers.map(\.name) == [name])
  }

  @Test func grantIsRequired() {
    let text = """
      [providers.energy]
      token_url = "https://a.example.com/t"
      """
    #expect(
      problems(text) == [
        "1: providers.energy.grant: missing; set grant to one of: client_credentials, password, refresh_token, authorization_code, api_key"
      ])
  }

  @Test func enumsListValidValuesAndSuggest() {
    let text = """
      [broker]
      log_level = "warnin"
      log_target = "syslog"
      [providers.energy]
      token_url = "https://a.example.com/t"
      grant = "client_credential"
      client_auth = "basic"
      body = "JSON"
      """
    #expect(
      problems(text) == [
        "2: broker.log_level: unknown log level \"warnin\"; did you mean 'warning'? "
          + "(expected one of: trace, debug, info, notice, warning, error)",
        "3: broker.log_target: unknown log target \"syslog\" (expected one of: auto, journal, console)",
        "6: providers.energy.grant: unknown grant \"client_credential\"; did you mean 'client_credentials'? "
          + "(expected one of: client_credentials, password, refresh_token, authorization_code, api_key)",
        "7: providers.energy.client_auth: unknown client_auth \"basic\" "
          + "(expected one of: client_secret_basic, client_secret_post, none)",
        "8: providers.energy.body: unknown body \"JSON\"; did you mean 'json'? (expected one of: form, json, none)",
      ])
  }

  @Test func tokenURLIsRequiredExceptForApiKey() throws {
    let text = """
      [providers.energy]
      grant = "client_credentials"
      client_id = "id"
      client_secret = { env = "S" }
      """
    #expect(
      problems(text) == [
        "1: providers.energy.token_url: missing; set token_url to the token endpoint, "
          + "e.g. \"https://auth.example.com/oauth/token\""
      ])
    _ = try parse("[providers.k]\ngrant = \"api_key\"\napi_key = { env = \"K\" }")
  }

  @Test(arguments: [
    (
      "/oauth/token",
      "must be an absolute URL like \"https://auth.example.com/oauth/token\", found \"/oauth/token\""
    ),
    ("https://", "must be an absolute URL like \"https://auth.example.com/oauth/token\"; it has no host"),
    (
      "https:///token",
      "must be an absolute URL like \"https://auth.example.com/oauth/token\"; it has no host"
    ),
    ("ftp://a.example.com/t", "scheme \"ftp\" is not supported; use https://"),
    (
      "http://auth.example.com/t",
      "http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); use https:// for \"auth.example.com\""
    ),
    (
      "http://128.0.0.1/t",
      "http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); use https:// for \"128.0.0.1\""
    ),
    (
      "http://[::2]/t",
      "http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); use https:// for \"[::2]\""
    ),
    (
      "https://user:pw@a.example.com/t",
      "must not hold credentials (user@host); use client_id and client_secret"
    ),
    (
      "https://a.example.com:99999/t",
      "must be an absolute URL like \"https://auth.example.com/oauth/token\"; the port must be a number from 1 to 65535"
    ),
    ("https://a.example.com/t#x", "must not have a #fragment; remove it"),
    (
      "https://a.example.com/a b",
      "must be an absolute URL like \"https://auth.example.com/oauth/token\"; it contains a space or a control character"
    ),
  ])
  func badTokenURLs(url: String, message: String) {
    let text =
      "[providers.energy]\ngrant = \"client_credentials\"\nclient_id = \"i\"\n"
      + "client_secret = { env = \"S\" }\ntoken_url = \"\(url)\""
    #expect(problems(text) == ["5: providers.energy.token_url: " + message])
  }

  @Test(arguments: [
    "https://auth.example.com/oauth/token?x=1", "HTTPS://auth.example.com:8443/t",
    "http://127.0.0.1:8080/token",
    "http://127.9.8.7/t", "http://localhost/t", "http://LOCALHOST:9/t", "http://[::1]:8080/t",
    "http://[0:0:0:0:0:0:0:1]/t",
  ])
  func goodTokenURLs(url: String) throws {
    let text =
      "[providers.energy]\ngrant = \"client_credentials\"\nclient_id = \"i\"\n"
      + "client_secret = { env = \"S\" }\ntoken_url = \"\(url)\""
    let config = try parse(text)
    #expect(config.providers.first?.tokenURL == url)
  }

  @Test func loopbackRecognition() {
    for host in ["127.0.0.1", "127.255.0.1", "::1", "[::1]", "localhost", "0::1", "[0:0:0:0:0:0:0:1]"] {
      #expect(ConfigReader.isLoopback(host), "\(host)")
    }
    for host in [
      "128.0.0.1", "127.0.0", "::2", "localhost.example.com", "127.0.0.1.example.com", "::", "1::1",
    ] {
      #expect(!ConfigReader.isLoopback(host), "\(host)")
    }
  }

  @Test func clientCredentialsNeedsClientIDAndSecret() {
    let text = """
      [providers.energy]
      token_url = "https://a.example.com/t"
      grant = "client_credentials"
      """
    let why =
      "client_auth \"client_secret_basic\" needs client_id and client_secret (use client_auth = \"none\" for a public client)"
    #expect(
      problems(text) == [
        "1: providers.energy.client_id: missing; " + why,
        "1: providers.energy.client_secret: missing; " + why,
      ])
  }

  @Test func clientSecretPostNeedsClientIDAndSecret() {
    let text = """
      [providers.placeos]
      token_url = "https://a.example.com/t"
      grant = "password"
      client_auth = "client_secret_post"
      username = "u"
      password = { env = "P" }
      client_id = "id"
      """
    #expect(
      problems(text) == [
        "1: providers.placeos.client_secret: missing; client_auth \"client_secret_post\" needs client_id and "
          + "client_secret (use client_auth = \"none\" for a public client)"
      ])
  }

  @Test func clientAuthNoneNeedsNoSecretAndRefusesOne() throws {
    let ok = """
      [providers.pub]
      token_url = "https://a.example.com/t"
      grant = "client_credentials"
      client_auth = "none"
      """
    #expect(try parse(ok).providers.first?.clientAuth == ClientAuth.none)
    #expect(
      problems(energy("client_auth = \"none\"")) == [
        "5: providers.energy.client_secret: not used with client_auth \"none\"; remove it, "
          + "or choose client_secret_basic or client_secret_post"
      ])
  }

  @Test func passwordNeedsUsernameAndPassword() {
    let text = """
      [providers.pv]
      token_url = "https://a.example.com/t"
      grant = "password"
      client_auth = "none"
      """
    #expect(
      problems(text) == [
        "1: providers.pv.username: missing; grant \"password\" needs username and password",
        "1: providers.pv.password: missing; grant \"password\" needs username and password, "
          + "e.g. password = { credential = \"NAME-password\" }",
      ])
  }

  @Test func refreshTokenGrantNeedsRefreshToken() throws {
    let text = """
      [providers.rt]
      token_url = "https://a.example.com/t"
      grant = "refresh_token"
      client_auth = "none"
      client_id = "id"
      """
    #expect(
      problems(text) == [
        "1: providers.rt.refresh_token: missing; grant \"refresh_token\" needs the first refresh token, "
          + "e.g. refresh_token = { file = \"...\" }, or an authorize_url or device_authorization_url "
          + "to get one with `tokenctl login`"
      ])
    let config = try parse(text + "\nrefresh_token = { file = \"/var/lib/rt\" }")
    #expect(config.providers.first?.refreshToken == .file("/var/lib/rt"))
  }

  @Test func apiKeyGrantNeedsApiKey() {
    #expect(
      problems("[providers.k]\ngrant = \"api_key\"") == [
        "1: providers.k.api_key: missing; grant \"api_key\" needs api_key, e.g. api_key = { env = \"NAME_API_KEY\" }"
      ])
  }

  @Test func keysNotUsedByTheGrantAreErrors() {
    let text = energy(
      """
      username = "u"
      password = { env = "P" }
      api_key_header = "X-Key"
      """)
    #expect(
      problems(text) == [
        "6: providers.energy.username: not used by grant \"client_credentials\"; remove it",
        "7: providers.energy.password: not used by grant \"client_credentials\"; remove it",
        "8: providers.energy.api_key_header: not used by grant \"client_credentials\"; remove it",
      ])
    let apiKey = """
      [providers.k]
      grant = "api_key"
      api_key = { env = "K" }
      token_url = "https://a.example.com/t"
      scopes = ["a"]
      """
    #expect(
      problems(apiKey) == [
        "4: providers.k.token_url: not used by grant \"api_key\"; remove it",
        "5: providers.k.scopes: not used by grant \"api_key\"; remove it",
      ])
  }

  @Test func bodyNoneOnlyWithClientCredentialsAndBasic() throws {
    let ok = try parse(energy("body = \"none\""))
    #expect(ok.providers.first?.body == BodyFormat.none)

    let post = energy("body = \"none\"\nclient_auth = \"client_secret_post\"")
    #expect(
      problems(post) == [
        "6: providers.energy.body: body \"none\" (no request body) needs grant \"client_credentials\" with "
          + "client_auth \"client_secret_basic\"; found grant \"client_credentials\" with client_auth \"client_secret_post\""
      ])
    let password = """
      [providers.pv]
      token_url = "https://a.example.com/t"
      grant = "password"
      client_id = "id"
      client_secret = { env = "S" }
      username = "u"
      password = { env = "P" }
      body = "none"
      """
    #expect(
      problems(password) == [
        "8: providers.pv.body: body \"none\" (no request body) needs grant \"client_credentials\" with "
          + "client_auth \"client_secret_basic\"; found grant \"password\" with client_auth \"client_secret_basic\""
      ])
  }

  @Test func scopesMustBeNonEmptyWithoutSpacesAndAllowed() {
    let text = energy(
      """
      scopes = [
        "read:sites",
        "read sites",
        "",
        "write:sites",
      ]
      allowed_scopes = ["read:sites"]
      """)
    #expect(
      problems(text) == [
        "8: providers.energy.scopes: entry 2: \"read sites\" contains a space or a character a scope may not hold; "
          + "list each scope as its own string",
        "9: providers.energy.scopes: entry 3: must not be empty",
        "10: providers.energy.scopes: \"write:sites\" is not in allowed_scopes; add it there or remove it",
      ])
    let notAllowed = energy(
      """
      scopes = ["read:sites", "write:sites"]
      allowed_scopes = ["read:sites"]
      """)
    #expect(
      problems(notAllowed) == [
        "6: providers.energy.scopes: \"write:sites\" is not in allowed_scopes; add it there or remove it"
      ])
    #expect(
      problems(energy("allowed_scopes = [1]")) == [
        "6: providers.energy.allowed_scopes: entry 1: expected a string, found an integer"
      ])
  }

  @Test func paramsAreStringsAndNotReserved() {
    let text = energy(
      """
      [providers.energy.params]
      audience = "x"
      grant_type = "password"
      scope = "a b"
      n = 3
      """)
    #expect(
      problems(text) == [
        "8: providers.energy.params.grant_type: set by the broker; use the provider's grant key instead",
        "9: providers.energy.params.scope: set by the broker; use the provider's scopes key instead",
        "10: providers.energy.params.n: expected a string, found an integer",
      ])
  }

  @Test(arguments: ["Authorization", "content-type", "CONTENT-LENGTH", "Host", "user-agent", "X-Request-Id"])
  func reservedHeadersAreRefused(name: String) {
    let result = problems(energy("headers = { \"\(name)\" = \"v\" }"))
    #expect(result.count == 1)
    #expect(result.first?.hasPrefix("6: providers.energy.headers.\(name): ") == true)
    #expect(result.first?.contains("is set by the broker and may not be configured") == true)
  }

  @Test func headerNamesValuesAndApiKeyHeader() {
    let text = energy(
      """
      headers = { "Bad Name" = "v", "X-N" = 1 }
      """)
    #expect(
      problems(text) == [
        "6: providers.energy.headers.X-N: expected a string, found an integer",
        "6: providers.energy.headers.\"Bad Name\": not a valid HTTP header name",
      ])
    let injected = energy(#"headers = { "X-Ok" = "a\r\nInjected: 1" }"#)
    #expect(
      problems(injected) == [
        "6: providers.energy.headers.X-Ok: a header value must not contain line breaks or control characters"
      ])
    let key = "[providers.k]\ngrant = \"api_key\"\napi_key = { env = \"K\" }\napi_key_header = \"X API Key\""
    #expect(problems(key) == ["4: providers.k.api_key_header: \"X API Key\" is not a valid HTTP header name"])
  }

  @Test func allowEntriesArePrincipals() throws {
    let text = energy(
      """
      allow = [
        "user:scheduler",
        "usr:bob",
        "uid:x",
        7,
        "group:",
      ]
      """)
    let forms = "use user:NAME, group:NAME, uid:N or gid:N"
    #expect(
      problems(text) == [
        "8: providers.energy.allow: \"usr:bob\" is not a principal; " + forms,
        "9: providers.energy.allow: \"uid:x\" is not a principal; " + forms,
        "10: providers.energy.allow: entry 4: expected a string (user:NAME, group:NAME, uid:N or gid:N), found an integer",
        "11: providers.energy.allow: \"group:\" is not a principal; " + forms,
      ])
    #expect(
      problems("[broker]\nadmins = [\"root\"]") == ["2: broker.admins: \"root\" is not a principal; " + forms]
    )
  }

  @Test func caFileMustBeAbsolute() throws {
    #expect(
      problems(energy("ca_file = \"certs/ca.pem\"")) == [
        "6: providers.energy.ca_file: must be an absolute path (starting with '/'), found \"certs/ca.pem\""
      ])
    #expect(try parse(energy("ca_file = \"/etc/ssl/ca.pem\"")).providers.first?.caFile == "/etc/ssl/ca.pem")
  }
}

// MARK: - secrets

@Suite struct ConfigSecretTests {
  @Test func secretSources() throws {
    let text = """
      [providers.a]
      grant = "api_key"
      api_key = { file = "/etc/token-broker/secrets/a" }
      [providers.b]
      grant = "api_key"
      api_key = { env = "B_KEY" }
      [providers.c]
      grant = "api_key"
      api_key = { credential = "c-key" }
      [providers.d]
      grant = "api_key"
      api_key = "ak_live_literal"
      """
    let config = try parse(text, mode: 0o100600)
    #expect(
      config.providers.map(\.apiKey) == [
        .file("/etc/token-broker/secrets/a"), .env("B_KEY"), .credential("c-key"),
        .literal("ak_live_literal"),
      ])
    // Mode unknown: literal allowed.
    _ = try parse(text)
  }

  @Test(arguments: [
    (UInt32(0o644), "0644"), (0o640, "0640"), (0o604, "0604"), (0o100660, "0660"), (0o2750, "2750"),
  ])
  func literalSecretRefusedInGroupOrOtherReadableFile(mode: UInt32, octal: String) {
    let text = energy().replacingOccurrences(
      of: #"client_secret = { file = "/etc/token-broker/secrets/energy" }"#,
      with: #"client_secret = "s3cr3t-value""#)
    let result = problems(text, mode: mode)
    #expect(
      result == [
        "5: providers.energy.client_secret: a literal secret in a file readable by group or others (mode \(octal)); "
          + "chmod 600 the file or use { file = ... } / { credential = ... }"
      ])
    #expect(!result.joined().contains("s3cr3t-value"))
  }

  @Test func literalModeMessageExample() {
    let text = "[providers.k]\ngrant = \"api_key\"\napi_key = \"ak_live_123\""
    #expect(
      problems(text, mode: 0o644) == [
        "3: providers.k.api_key: a literal secret in a file readable by group or others (mode 0644); "
          + "chmod 600 the file or use { file = ... } / { credential = ... }"
      ])
  }

  @Test func secretTablesNeedExactlyOneValidSource() {
    let text = """
      [providers.a]
      grant = "api_key"
      api_key = { file = "/x", env = "X" }
      [providers.b]
      grant = "api_key"
      api_key = {}
      [providers.c]
      grant = "api_key"
      api_key = { file = "secrets/c" }
      [providers.d]
      grant = "api_key"
      api_key = { credential = "../d" }
      [providers.e]
      grant = "api_key"
      api_key = { env = "1BAD-NAME" }
      [providers.f]
      grant = "api_key"
      api_key = { env = 5 }
      [providers.g]
      grant = "api_key"
      api_key = ""
      """
    #expect(
      problems(text) == [
        "3: providers.a.api_key: expected exactly one of file, env or credential; found file and env",
        "6: providers.b.api_key: expected exactly one of file, env or credential",
        "9: providers.c.api_key.file: must be the absolute path of a file (starting with '/')",
        "12: providers.d.api_key.credential: must be a plain file name in $CREDENTIALS_DIRECTORY (no '/'), "
          + "e.g. \"NAME-secret\"",
        "15: providers.e.api_key.env: must be an environment variable name (letters, digits and '_', "
          + "not starting with a digit)",
        "18: providers.f.api_key.env: expected a string, found an integer",
        "21: providers.g.api_key: the secret is empty",
      ])
  }

  @Test func noMessageEverHoldsASecretValue() {
    let secret = "TOPSECRET-9f8e7d"
    let text = """
      [providers.energy]
      token_url = "http://auth.example.com/t"
      grant = "client_credentials"
      client_auth = "none"
      client_secret = "\(secret)"
      password = "\(secret)"
      [providers.k]
      grant = "api_key"
      api_key = "\(secret)"
      refresh_token = "\(secret)"
      [providers.rt]
      grant = "refresh_token"
      token_url = "https://a.example.com/t"
      client_id = "i"
      client_secret = { env = "S" }
      refresh_token = "\(secret)"
      """
    do {
      _ = try ConfigParser.parse(text, path: "broker.toml", fileMode: 0o644)
      Issue.record("expected problems")
    } catch {
      #expect(error.problems.count >= 5)
      #expect(!error.description.contains(secret))
    }
  }
}

// MARK: - [broker]

@Suite struct ConfigBrokerTests {
  @Test func socketMustBeAbsoluteAndShort() {
    #expect(
      problems("[broker]\nsocket = \"run/x.sock\"") == [
        "2: broker.socket: must be an absolute path (starting with '/'), found \"run/x.sock\""
      ])
    let long = "/" + String(repeating: "s", count: 107)
    #expect(
      problems("[broker]\nsocket = \"\(long)\"") == [
        "2: broker.socket: path is 108 bytes, but a Unix socket path holds at most 107; choose a shorter path"
      ])
    let longest = "/" + String(repeating: "s", count: 106)
    #expect(problems("[broker]\nsocket = \"\(longest)\"").isEmpty)
  }

  @Test func pathsAndGroup() {
    let text = """
      [broker]
      state_dir = "var/lib/tb"
      socket_group = 10
      """
    #expect(
      problems(text) == [
        "2: broker.state_dir: must be an absolute path (starting with '/'), found \"var/lib/tb\"",
        "3: broker.socket_group: expected a string, found an integer",
      ])
    #expect(problems("[broker]\nsocket_group = \"\"") == ["2: broker.socket_group: must not be empty"])
  }

  @Test(arguments: [
    ("refresh_at = 0", "broker.refresh_at: must be between 0 and 1 (both excluded), found 0"),
    ("refresh_at = 1", "broker.refresh_at: must be between 0 and 1 (both excluded), found 1"),
    ("refresh_at = -0.5", "broker.refresh_at: must be between 0 and 1 (both excluded), found -0.5"),
    ("refresh_jitter = 0.5", "broker.refresh_jitter: must be at least 0 and less than 0.5, found 0.5"),
    ("refresh_jitter = -0.01", "broker.refresh_jitter: must be at least 0 and less than 0.5, found -0.01"),
    ("min_valid = -1", "broker.min_valid: must be between 0 and 86400 seconds, found -1"),
    ("min_valid = 1e19", "broker.min_valid: must be between 0 and 86400 seconds, found 1e+19"),
    ("request_timeout = 0", "broker.request_timeout: must be more than 0 and at most 300 seconds, found 0"),
    (
      "request_timeout = 300.5",
      "broker.request_timeout: must be more than 0 and at most 300 seconds, found 300.5"
    ),
    (
      "scope_idle_timeout = 0",
      "broker.scope_idle_timeout: must be more than 0 and at most 2592000 seconds (30 days), found 0"
    ),
    (
      "scope_idle_timeout = 1e300",
      "broker.scope_idle_timeout: must be more than 0 and at most 2592000 seconds (30 days), found 1e+300"
    ),
  ])
  func numberRanges(line: String, message: String) {
    #expect(problems("[broker]\n\(line)") == ["2: " + message])
  }

  @Test func refreshWindowMustStayInsideTheLifetime() throws {
    #expect(
      problems("[broker]\nrefresh_at = 0.9\nrefresh_jitter = 0.1") == [
        "3: broker.refresh_jitter: refresh_at ± refresh_jitter must stay between 0 and 1 (both excluded), "
          + "found 0.9 ± 0.1"
      ])
    #expect(
      problems("[broker]\nrefresh_jitter = 0.4\nrefresh_at = 0.3") == [
        "2: broker.refresh_jitter: refresh_at ± refresh_jitter must stay between 0 and 1 (both excluded), "
          + "found 0.3 ± 0.4"
      ])
    // Only refresh_at given: the default jitter (0.05) applies, reported at refresh_at.
    #expect(
      problems("[broker]\nrefresh_at = 0.97") == [
        "2: broker.refresh_at: refresh_at ± refresh_jitter must stay between 0 and 1 (both excluded), "
          + "found 0.97 ± 0.05"
      ])
    let ok = try parse("[broker]\nrefresh_at = 0.5\nrefresh_jitter = 0.49")
    #expect(ok.broker.refreshJitter == 0.49)
  }
}

// MARK: - everything at once

@Suite struct ConfigAllProblemsTests {
  @Test func everyProblemIsReportedSortedByLine() {
    let text = """
      [providers.zeta]
      grant = "password"
      token_url = "http://example.com/t"
      client_auth = "none"

      [broker]
      refresh_at = 2
      log_level = "loud"
      socket = "relative.sock"

      [providers.alpha]
      grant = "client_credentials"
      token_url = "https://a.example.com/t"
      client_id = "id"
      client_secret = { file = "/s" }
      allow = ["nobody"]
      colour = "red"
      """
    do {
      _ = try ConfigParser.parse(text, path: "/etc/token-broker/broker.toml")
      Issue.record("expected problems")
    } catch {
      let lines = error.problems.map(\.line)
      #expect(lines == lines.sorted())
      #expect(
        error.problems.map { "\($0.line): \($0.message)" } == [
          "1: providers.zeta.username: missing; grant \"password\" needs username and password",
          "1: providers.zeta.password: missing; grant \"password\" needs username and password, "
            + "e.g. password = { credential = \"NAME-password\" }",
          "3: providers.zeta.token_url: http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); "
            + "use https:// for \"example.com\"",
          "7: broker.refresh_at: must be between 0 and 1 (both excluded), found 2",
          "8: broker.log_level: unknown log level \"loud\" (expected one of: trace, debug, info, notice, warning, error)",
          "9: broker.socket: must be an absolute path (starting with '/'), found \"relative.sock\"",
          "16: providers.alpha.allow: \"nobody\" is not a principal; use user:NAME, group:NAME, uid:N or gid:N",
          "17: providers.alpha.colour: unknown key",
        ])
      #expect(error.problems.allSatisfy { $0.path == "/etc/token-broker/broker.toml" })
      #expect(error.description.split(separator: "\n").count == error.problems.count)
      #expect(
        error.description.split(separator: "\n").first
          == "/etc/token-broker/broker.toml:1: providers.zeta.username: missing; grant \"password\" needs username and password"
      )
    }
  }

  @Test func configErrorSortsStablyByLine() {
    let e = ConfigError(problems: [
      ConfigProblem(path: "p", line: 5, message: "b"), ConfigProblem(path: "p", line: 2, message: "a"),
      ConfigProblem(path: "p", line: 5, message: "c"), ConfigProblem(path: "p", line: 0, message: "z"),
    ])
    #expect(e.problems.map(\.message) == ["z", "a", "b", "c"])
    #expect(e.description == "p: z\np:2: a\np:5: b\np:5: c")
  }
}

// MARK: - building blocks

@Suite struct ConfigBuildingBlockTests {
  @Test func sourceLinesFindKeysHeadersAndElements() {
    let text = """
      # a = 1 in a comment
      title = \"\"\"
      [not.a.table]
      fake = 1
      \"\"\"
      [a."b.c"]   # header
      x.y = 'z'
      inline = { k = 1, "q k" = { deep = true } }
      list = [
        1, # one
        { in = 2 },
        [3],
      ]
      [[arr]]
      v = 1
      """
    let lines = ConfigSourceLines(text)
    #expect(lines.line(of: ["title"]) == 2)
    #expect(!lines.contains(["not", "a", "table"]))
    #expect(!lines.contains(["fake"]))
    #expect(lines.line(of: ["a", "b.c"]) == 6)
    #expect(lines.line(of: ["a"]) == 6)
    #expect(lines.line(of: ["a", "b.c", "x", "y"]) == 7)
    #expect(lines.line(of: ["a", "b.c", "x"]) == 7)
    #expect(lines.line(of: ["a", "b.c", "inline", "k"]) == 8)
    #expect(lines.line(of: ["a", "b.c", "inline", "q k", "deep"]) == 8)
    #expect(lines.line(of: ["a", "b.c", "list"]) == 9)
    #expect(lines.line(of: ["a", "b.c", "list"], element: 0) == 10)
    #expect(lines.line(of: ["a", "b.c", "list"], element: 1) == 11)
    #expect(lines.line(of: ["a", "b.c", "list"], element: 2) == 12)
    #expect(lines.line(of: ["a", "b.c", "list"], element: 9) == 9)
    #expect(lines.line(of: ["a", "b.c", "missing"]) == 6)
    #expect(lines.line(of: ["arr", "v"]) == 15)
    #expect(lines.line(of: ["nothing"]) == 0)
  }

  @Test func sourceLinesDecodeEscapedKeys() {
    let lines = ConfigSourceLines("\n\"k\\u00e9y\" = 1\n'lit\\eral' = 2")
    #expect(lines.line(of: ["kéy"]) == 2)
    #expect(lines.line(of: ["lit\\eral"]) == 3)
  }

  @Test func didYouMean() {
    #expect(
      ConfigDidYouMean.suggestion(for: "client_secert", among: ConfigReader.providerKeys) == "client_secret")
    #expect(ConfigDidYouMean.suggestion(for: "TOKEN_URL", among: ConfigReader.providerKeys) == "token_url")
    #expect(ConfigDidYouMean.suggestion(for: "colour", among: ConfigReader.providerKeys) == nil)
    #expect(ConfigDidYouMean.distance("kitten", "sitting") == 3)
    #expect(ConfigDidYouMean.distance("", "abc") == 3)
    #expect(ConfigDidYouMean.distance("same", "same") == 0)
  }

  @Test func keyDisplayQuotesWhatIsNotBare() {
    #expect(ConfigReader.display(["providers", "energy", "client_id"]) == "providers.energy.client_id")
    #expect(ConfigReader.display(["providers", "my name", "x\"y"]) == "providers.\"my name\".\"x\\\"y\"")
  }
}

// MARK: - per-provider min_valid

@Suite struct ConfigProviderMinValidTests {
  /// `problems` as `PATH:LINE: message`, the form users see.
  func described(_ text: String) -> [String] {
    do {
      _ = try parse(text)
      return []
    } catch {
      return error.problems.map(\.description)
    }
  }

  @Test func validValuesAreRead() throws {
    #expect(try parse(energy("min_valid = 5")).provider(named: "energy")?.minValid == 5)
    #expect(try parse(energy("min_valid = 0")).provider(named: "energy")?.minValid == 0)
    #expect(try parse(energy("min_valid = 86400")).provider(named: "energy")?.minValid == 86400)
    #expect(try parse(energy("min_valid = 2.5")).provider(named: "energy")?.minValid == 2.5)
    #expect(try parse(energy()).provider(named: "energy")?.minValid == nil)
    let password = try parse(
      """
      [providers.pv]
      token_url = "https://auth.example.com/token"
      grant = "password"
      client_auth = "none"
      client_id = "id"
      username = "u"
      password = { env = "PV_PASSWORD" }
      min_valid = 120
      """)
    #expect(password.provider(named: "pv")?.minValid == 120)
  }

  @Test func outOfRangeHasTheBrokerKeysMessage() {
    #expect(
      described(energy("min_valid = 86401")) == [
        "broker.toml:6: providers.energy.min_valid: must be between 0 and 86400 seconds, found 86401"
      ])
    #expect(
      described(energy("min_valid = -1")) == [
        "broker.toml:6: providers.energy.min_valid: must be between 0 and 86400 seconds, found -1"
      ])
    #expect(
      described("[broker]\nmin_valid = -1") == [
        "broker.toml:2: broker.min_valid: must be between 0 and 86400 seconds, found -1"
      ])
  }

  @Test func wrongTypeAndNonFinite() {
    #expect(
      described(energy(#"min_valid = "30""#)) == [
        "broker.toml:6: providers.energy.min_valid: expected a number, found a string"
      ])
    #expect(
      described(energy("min_valid = nan")) == [
        "broker.toml:6: providers.energy.min_valid: expected a finite number, found nan"
      ])
  }

  @Test func misspeltKeySuggestsMinValid() {
    #expect(
      described(energy("min_vaild = 5")) == [
        "broker.toml:6: providers.energy.min_vaild: unknown key; did you mean 'min_valid'?"
      ])
  }

  @Test func notUsedByAnAPIKeyProvider() {
    let text = "[providers.keys]\ngrant = \"api_key\"\napi_key = { env = \"K\" }\nmin_valid = 5\n"
    #expect(
      described(text) == [
        "broker.toml:4: providers.keys.min_valid: not used by grant \"api_key\"; remove it"
      ])
  }
}

// MARK: - keys that may be secrets (security review L11)

@Suite struct ConfigSecretShapedKeyTests {
  /// 60 characters of base64url, as a wrapped secret leaves on a line of its own.
  static let pasted = "Zm9vYmFyYmF6cXV4X3NlY3JldF92YWx1ZV90aGF0X2lzX2xvbmdfZW5vdWdo"

  @Test func aPastedSecretLineIsNeverQuotedByTheTOMLParser() {
    #expect(Self.pasted.count == 60)
    let text = energy("client_secret_extra_line_follows = \"x\"\n" + Self.pasted)
    let result = problems(text)
    #expect(result.count == 1)
    let message = result.first ?? ""
    #expect(message.hasPrefix("7: TOML syntax error at column 61: a line that is not key = value"))
    #expect(message.contains("a key of 60 characters"))
    #expect(!message.contains(Self.pasted))
    #expect(!message.contains(String(Self.pasted.prefix(8))))
  }

  @Test func aPastedJWTLineIsNotQuotedEither() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2ln"
    let result = problems(energy(jwt))
    #expect(result.count == 1)
    #expect(result.first?.contains("a key of \(jwt.count) characters") == true)
    #expect(result.first?.contains("eyJ") == false)
  }

  @Test func aShortTokenShapedKeyIsNotQuoted() {
    let result = problems(energy("AbCdEf123456"))
    #expect(result.first?.contains("a key of 12 characters") == true)
    #expect(result.first?.contains("AbCdEf") == false)
  }

  @Test func anUnknownKeyThatLooksLikeASecretGivesOnlyItsLength() {
    let text = energy("\(Self.pasted) = \"x\"")
    #expect(
      problems(text) == [
        "6: providers.energy: an unknown key of 60 characters (not shown: too long or shaped like a secret)"
      ])
    #expect(
      problems("\(Self.pasted) = 1") == [
        "1: an unknown key of 60 characters (not shown: too long or shaped like a secret)"
      ])
  }

  @Test func ordinaryKeysAreStillQuoted() {
    #expect(problems(energy("colour = \"blue\"")) == ["6: providers.energy.colour: unknown key"])
    #expect(problems(energy("token_url_2")).first?.contains("expected '=' after key 'token_url_2'") == true)
    #expect(QuotableKey.isQuotable(["providers", "energy", "client_secret"]))
    #expect(!QuotableKey.isQuotable([String(repeating: "a", count: 33)]))
    #expect(QuotableKey.isQuotable([String(repeating: "a", count: 32)]))
  }
}

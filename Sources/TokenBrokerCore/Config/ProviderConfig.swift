/// How the daemon obtains a provider's token.
package enum Grant: String, Sendable, Equatable, CaseIterable {
  case clientCredentials = "client_credentials"
  case password
  case refreshToken = "refresh_token"
  /// The first refresh token comes from `tokenctl login` (code + PKCE or device), then
  /// it rotates like `refresh_token`.
  case authorizationCode = "authorization_code"
  case apiKey = "api_key"

  /// Grants whose only credential is a refresh token: without one they need a login.
  package var livesOnRefreshToken: Bool { self == .refreshToken || self == .authorizationCode }
}

/// How `introspection_url` is asked about an opaque token.
package enum IntrospectionMethod: String, Sendable, Equatable, CaseIterable {
  /// RFC 7662: `POST token=...` with the provider's client authentication.
  case rfc7662
  /// `GET URL?bearer_token=TOKEN` (PlaceOS's inspect endpoint).
  case bearerQuery = "bearer_query"
}

/// The endpoints of the login flows, revocation and inspection (README "Logging in").
package struct LoginEndpoints: Sendable, Equatable {
  /// The default redirect URI: loopback, any port (RFC 8252 section 7.3).
  package static let defaultRedirectURI = "http://127.0.0.1/callback"

  package var authorizeURL: String? = nil
  package var redirectURI: String = LoginEndpoints.defaultRedirectURI
  package var authorizeParams: [String: String] = [:]
  package var deviceAuthorizationURL: String? = nil
  package var revocationURL: String? = nil
  package var introspectionURL: String? = nil
  package var introspectionMethod: IntrospectionMethod = .rfc7662

  package init() {}

  /// Whether `tokenctl login` can seed this provider.
  package var canLogIn: Bool { authorizeURL != nil || deviceAuthorizationURL != nil }
}

/// How the client authenticates to the token endpoint.
package enum ClientAuth: String, Sendable, Equatable, CaseIterable {
  /// `Authorization: Basic base64(client_id:client_secret)`.
  case clientSecretBasic = "client_secret_basic"
  /// `client_id` and `client_secret` in the body.
  case clientSecretPost = "client_secret_post"
  /// Only `client_id` (if any) in the body.
  case none
}

/// The token request's body encoding.
package enum BodyFormat: String, Sendable, Equatable, CaseIterable {
  case form, json
  /// No body and no `grant_type` at all (Powernaut's Basic-only endpoint).
  case none
}

/// Where a secret comes from. Resolving it is I/O and happens outside the core.
package enum SecretSource: Sendable, Equatable, CustomStringConvertible {
  case literal(String)
  case file(String)
  case env(String)
  /// `$CREDENTIALS_DIRECTORY/NAME`, as systemd's `LoadCredential=` provides.
  case credential(String)

  /// A secret that must be one line, as read: one trailing line end (`\n` or `\r\n`, which a
  /// file written by an editor or `echo` has) dropped, nothing else changed.
  package static func droppingOneLineEnd(_ value: String) -> Substring {
    var text = Substring(value)
    // "\r\n" is one Character.
    if text.last == "\n" || text.last == "\r\n" { text = text.dropLast() }
    return text
  }

  /// Describes the source without ever showing a literal's value.
  package var description: String {
    switch self {
    case .literal: return "a literal value"
    case .file(let path): return "file \(path)"
    case .env(let name): return "environment variable \(name)"
    case .credential(let name): return "credential \(name)"
    }
  }
}

/// One `[providers.NAME]` table, validated.
package struct ProviderConfig: Sendable, Equatable {
  package var name: String
  package var tokenURL: String
  package var grant: Grant
  package var clientAuth: ClientAuth = .clientSecretBasic
  package var body: BodyFormat = .form
  package var clientID: String? = nil
  package var clientSecret: SecretSource? = nil
  package var username: String? = nil
  package var password: SecretSource? = nil
  package var refreshToken: SecretSource? = nil
  package var apiKey: SecretSource? = nil
  package var apiKeyHeader: String = "X-API-Key"
  package var scopes: [String] = []
  /// What a client may ask for; defaults to `scopes`.
  package var allowedScopes: [String] = []
  package var params: [String: String] = [:]
  package var headers: [String: String] = [:]
  package var allow: [Principal] = []
  /// Seconds; overrides `[broker] min_valid` for this provider when set.
  package var minValid: Double? = nil
  /// `fleet = false` keeps this provider's tokens local under `[fleet]`.
  package var fleet: Bool = true
  /// PEM bundle used instead of the system trust store.
  package var caFile: String? = nil
  /// Login, revocation and inspection endpoints.
  package var login = LoginEndpoints()
  /// 1-based line of the `[providers.NAME]` header, for messages.
  package var line: Int = 0

  package init(name: String, tokenURL: String, grant: Grant) {
    self.name = name
    self.tokenURL = tokenURL
    self.grant = grant
  }
}

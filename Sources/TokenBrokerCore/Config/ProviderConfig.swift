/// How the daemon obtains a provider's token.
package enum Grant: String, Sendable, Equatable, CaseIterable {
  case clientCredentials = "client_credentials"
  case password
  case refreshToken = "refresh_token"
  case apiKey = "api_key"
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
  /// PEM bundle used instead of the system trust store.
  package var caFile: String? = nil
  /// 1-based line of the `[providers.NAME]` header, for messages.
  package var line: Int = 0

  package init(name: String, tokenURL: String, grant: Grant) {
    self.name = name
    self.tokenURL = tokenURL
    self.grant = grant
  }
}

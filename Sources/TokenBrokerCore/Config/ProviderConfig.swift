/// How the daemon obtains a provider's token.
public enum Grant: String, Sendable, Equatable, CaseIterable {
  case clientCredentials = "client_credentials"
  case password
  case refreshToken = "refresh_token"
  case apiKey = "api_key"
}

/// How the client authenticates to the token endpoint.
public enum ClientAuth: String, Sendable, Equatable, CaseIterable {
  /// `Authorization: Basic base64(client_id:client_secret)`.
  case clientSecretBasic = "client_secret_basic"
  /// `client_id` and `client_secret` in the body.
  case clientSecretPost = "client_secret_post"
  /// Only `client_id` (if any) in the body.
  case none
}

/// The token request's body encoding.
public enum BodyFormat: String, Sendable, Equatable, CaseIterable {
  case form, json
  /// No body and no `grant_type` at all (Powernaut's Basic-only endpoint).
  case none
}

/// Where a secret comes from. Resolving it is I/O and happens outside the core.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
  case literal(String)
  case file(String)
  case env(String)
  /// `$CREDENTIALS_DIRECTORY/NAME`, as systemd's `LoadCredential=` provides.
  case credential(String)

  /// Describes the source without ever showing a literal's value.
  public var description: String {
    switch self {
    case .literal: return "a literal value"
    case .file(let path): return "file \(path)"
    case .env(let name): return "environment variable \(name)"
    case .credential(let name): return "credential \(name)"
    }
  }
}

/// One `[providers.NAME]` table, validated.
public struct ProviderConfig: Sendable, Equatable {
  public var name: String
  public var tokenURL: String
  public var grant: Grant
  public var clientAuth: ClientAuth = .clientSecretBasic
  public var body: BodyFormat = .form
  public var clientID: String? = nil
  public var clientSecret: SecretSource? = nil
  public var username: String? = nil
  public var password: SecretSource? = nil
  public var refreshToken: SecretSource? = nil
  public var apiKey: SecretSource? = nil
  public var apiKeyHeader: String = "X-API-Key"
  public var scopes: [String] = []
  /// What a client may ask for; defaults to `scopes`.
  public var allowedScopes: [String] = []
  public var params: [String: String] = [:]
  public var headers: [String: String] = [:]
  public var allow: [Principal] = []
  /// Seconds; overrides `[broker] min_valid` for this provider when set.
  public var minValid: Double? = nil
  /// PEM bundle used instead of the system trust store.
  public var caFile: String? = nil
  /// 1-based line of the `[providers.NAME]` header, for messages.
  public var line: Int = 0

  public init(name: String, tokenURL: String, grant: Grant) {
    self.name = name
    self.tokenURL = tokenURL
    self.grant = grant
  }
}

import TokenBrokerCore

/// Provider configurations matching each fake upstream dialect (the seeds).
package enum SeedProviders {
  package static func config(
    _ name: String, for upstream: FakeUpstream, grant: Grant? = nil, scopes: [String] = []
  ) -> (ProviderConfig, ResolvedSecrets) {
    let s = upstream.settings
    var p: ProviderConfig
    var secrets = ResolvedSecrets()
    switch upstream.dialect {
    case .energy:
      p = ProviderConfig(name: name, tokenURL: upstream.tokenURL, grant: .clientCredentials)
      p.clientAuth = .clientSecretBasic
      p.body = .form
      p.clientID = s.clientID
      secrets.clientSecret = s.clientSecret
    case .powernaut:
      p = ProviderConfig(name: name, tokenURL: upstream.tokenURL, grant: .clientCredentials)
      p.clientAuth = .clientSecretBasic
      p.body = .none
      p.clientID = s.clientID
      secrets.clientSecret = s.clientSecret
    case .powerverse:
      let g = grant ?? .password
      p = ProviderConfig(name: name, tokenURL: upstream.tokenURL, grant: g)
      p.body = .json
      p.clientID = s.clientID
      switch g {
      case .clientCredentials:
        p.clientAuth = .clientSecretPost
        secrets.clientSecret = s.clientSecret
      case .password:
        p.clientAuth = .none
        p.username = s.username
        secrets.password = s.password
      default:
        p.clientAuth = .none
      }
    case .placeos:
      p = ProviderConfig(name: name, tokenURL: upstream.tokenURL, grant: grant ?? .password)
      p.clientAuth = .none
      p.body = .json
      p.clientID = s.clientID
      p.username = s.username
      secrets.password = s.password
    case .formPassword:
      p = ProviderConfig(name: name, tokenURL: upstream.tokenURL, grant: grant ?? .password)
      p.clientAuth = .clientSecretBasic
      p.body = .form
      p.clientID = s.clientID
      p.username = s.username
      secrets.clientSecret = s.clientSecret
      secrets.password = s.password
    }
    p.scopes = scopes
    p.allowedScopes = scopes
    return (p, secrets)
  }

  /// A Powerverse-dialect `refresh_token` provider (a public client) whose first refresh
  /// token is `seed`, which `upstream` is told to accept; its answers rotate the token.
  package static func rotating(_ name: String, for upstream: FakeUpstream, seed: String) -> (
    ProviderConfig, ResolvedSecrets
  ) {
    upstream.seedRefreshToken(seed)
    var (p, secrets) = config(name, for: upstream, grant: .refreshToken)
    secrets.refreshToken = seed
    p.clientAuth = .none
    return (p, secrets)
  }
}

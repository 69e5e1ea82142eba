import TokenBrokerTOML

/// The login, revocation and inspection keys of `[providers.NAME]` (README "Logging in").
extension ConfigReader {
  mutating func parseLoginEndpoints(
    _ table: TOMLTable, into provider: inout ProviderConfig, at base: [String], wanted: (String) -> Bool
  ) {
    func key(_ k: String) -> [String] { base + [k] }
    func endpoint(_ k: String) -> String? {
      guard wanted(k), let value = table[k], let text = string(value, at: key(k)) else { return nil }
      return checkedTokenURL(text, at: key(k))
    }
    provider.login.authorizeURL = endpoint("authorize_url")
    provider.login.deviceAuthorizationURL = endpoint("device_authorization_url")
    provider.login.revocationURL = endpoint("revocation_url")
    provider.login.introspectionURL = endpoint("introspection_url")
    if wanted("redirect_uri"), let value = table["redirect_uri"],
      let text = string(value, at: key("redirect_uri"))
    {
      switch RedirectURI.parse(text) {
      case .success: provider.login.redirectURI = text
      case .failure(let problem): report(key("redirect_uri"), problem.message)
      }
    }
    if wanted("authorize_params"), let value = table["authorize_params"],
      let params = stringTable(value, at: key("authorize_params"))
    {
      for name in params.keys.sorted() {
        if name.isEmpty {
          report(key("authorize_params") + [name], "a parameter name must not be empty")
        } else if AuthorizationRequest.reservedParams.contains(name) {
          report(
            key("authorize_params") + [name],
            "set by the broker for every login (\(AuthorizationRequest.reservedParams.sorted().joined(separator: ", "))); remove it"
          )
        }
      }
      provider.login.authorizeParams = params
    }
    if wanted("introspection_method"), let value = table["introspection_method"] {
      provider.login.introspectionMethod =
        choice(
          value, at: key("introspection_method"), what: "introspection_method", as: IntrospectionMethod.self)
        ?? .rfc7662
    }
    if wanted("introspection_method"), provider.login.introspectionURL == nil,
      table["introspection_url"] == nil
    {
      report(key("introspection_method"), "needs introspection_url; add it or remove introspection_method")
    }
    if wanted("redirect_uri") || wanted("authorize_params"), table["authorize_url"] == nil {
      let k = wanted("redirect_uri") ? "redirect_uri" : "authorize_params"
      report(key(k), "only used with authorize_url; add authorize_url or remove \(k)")
    }
  }
}

/// Builds the token request for each dialect in the seeds: form or JSON bodies,
/// Basic or in-body client authentication, and Basic with no body at all.
package enum TokenRequestBuilder {
  package static func build(
    provider p: ProviderConfig, secrets: ResolvedSecrets, grant: RequestGrant, scopes: [String],
    requestID: String, userAgent: String
  ) -> TokenRequest {
    var fields: [(String, String)] = []
    switch grant {
    case .refresh(let token):
      fields.append(("grant_type", "refresh_token"))
      fields.append(("refresh_token", token))
    case .authorizationCode(let code, let verifier, let redirectURI):
      // RFC 6749 section 4.1.3 with RFC 7636 section 4.5.
      fields += [
        ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
        ("code_verifier", verifier),
      ]
    case .deviceCode(let code):
      fields += [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", code)]
    case .primary:
      switch p.grant {
      case .clientCredentials: fields.append(("grant_type", "client_credentials"))
      case .password:
        fields.append(("grant_type", "password"))
        fields.append(("username", p.username ?? ""))
        fields.append(("password", secrets.password ?? ""))
      case .refreshToken, .authorizationCode:
        fields.append(("grant_type", "refresh_token"))
        fields.append(("refresh_token", secrets.refreshToken ?? ""))
      case .apiKey:
        break
      }
    }
    // A login's exchange names no scope: the code or device grant carries what was approved.
    let scopes = grant.isLogin ? [] : (scopes.isEmpty ? p.scopes : scopes)
    return authenticated(
      provider: p, secrets: secrets, url: p.tokenURL, fields: fields, scopes: scopes,
      extraParams: true, requestID: requestID, userAgent: userAgent, usesRefreshToken: grant.usesRefreshToken)
  }

  /// A POST to one of the provider's endpoints (token, device authorization, revocation,
  /// introspection) in its own dialect: its client authentication, body format, extra
  /// headers and (for token-shaped requests) extra params.
  package static func authenticated(
    provider p: ProviderConfig, secrets: ResolvedSecrets, url: String, fields: [(String, String)],
    scopes: [String] = [], extraParams: Bool, requestID: String, userAgent: String,
    usesRefreshToken: Bool = false
  ) -> TokenRequest {
    var fields = fields
    var headers: [(name: String, value: String)] = [
      ("Accept", "application/json"), ("User-Agent", userAgent), ("X-Request-ID", requestID),
    ]
    switch p.clientAuth {
    case .clientSecretBasic:
      let pair = "\(p.clientID ?? ""):\(secrets.clientSecret ?? "")"
      headers.append(("Authorization", "Basic " + Base64.encode(pair.utf8)))
    case .clientSecretPost:
      if let id = p.clientID { fields.append(("client_id", id)) }
      if let secret = secrets.clientSecret { fields.append(("client_secret", secret)) }
    case .none:
      if let id = p.clientID { fields.append(("client_id", id)) }
    }
    // Never drop `scope` silently: a request without it gets the server's default scopes,
    // often every scope the client is registered for (`build` passes the configured ones).
    if !scopes.isEmpty { fields.append(("scope", scopes.joined(separator: " "))) }
    if extraParams {
      for key in p.params.keys.sorted() where !fields.contains(where: { $0.0 == key }) {
        fields.append((key, p.params[key]!))
      }
    }
    for name in p.headers.keys.sorted() { headers.append((name, p.headers[name]!)) }

    var url = url
    let body: [UInt8]
    switch p.body {
    case .form:
      headers.append(("Content-Type", "application/x-www-form-urlencoded"))
      body = Array(formEncode(fields).utf8)
    case .json:
      headers.append(("Content-Type", "application/json"))
      body = jsonEncode(fields)
    case .none:
      // Basic-only endpoints take no body and no grant_type; extra params ride on the query.
      let extra = fields.filter { p.params[$0.0] != nil }
      if !extra.isEmpty { url += (url.contains("?") ? "&" : "?") + formEncode(extra) }
      body = []
    }
    return TokenRequest(url: url, headers: headers, body: body, usesRefreshToken: usesRefreshToken)
  }

  /// `application/x-www-form-urlencoded` (WHATWG): unreserved bytes kept, the rest %XX.
  package static func formEncode(_ fields: [(String, String)]) -> String {
    fields.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
  }

  static func percentEncode(_ s: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count)
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        out.append(byte)
      default:
        out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func jsonEncode(_ fields: [(String, String)]) -> [UInt8] {
    var out: [UInt8] = [UInt8(ascii: "{")]
    for (i, (k, v)) in fields.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      JSONWriter.appendString(k, to: &out)
      out.append(UInt8(ascii: ":"))
      JSONWriter.appendString(v, to: &out)
    }
    out.append(UInt8(ascii: "}"))
    return out
  }
}

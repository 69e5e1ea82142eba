/// Requests to a provider's other endpoints, each in the provider's own dialect (client
/// authentication and body format as for its token endpoint): the device authorization
/// request (RFC 8628 section 3.1), revocation (RFC 7009) and introspection (RFC 7662, or
/// PlaceOS's `GET ...?bearer_token=`).
package enum LoginRequests {
  package static func deviceAuthorization(
    provider p: ProviderConfig, secrets: ResolvedSecrets, requestID: String, userAgent: String
  ) -> TokenRequest? {
    guard let url = p.login.deviceAuthorizationURL else { return nil }
    return TokenRequestBuilder.authenticated(
      provider: p, secrets: secrets, url: url, fields: [], scopes: p.scopes, extraParams: false,
      requestID: requestID, userAgent: userAgent)
  }

  /// Revokes `token` (a refresh token: RFC 7009 section 2.1 says the server then revokes the
  /// access tokens of the same grant too, where it supports that).
  package static func revocation(
    provider p: ProviderConfig, secrets: ResolvedSecrets, token: String, hint: String, requestID: String,
    userAgent: String
  ) -> TokenRequest? {
    guard let url = p.login.revocationURL else { return nil }
    return TokenRequestBuilder.authenticated(
      provider: p, secrets: secrets, url: url, fields: [("token", token), ("token_type_hint", hint)],
      extraParams: false, requestID: requestID, userAgent: userAgent)
  }

  package static func introspection(
    provider p: ProviderConfig, secrets: ResolvedSecrets, token: String, requestID: String, userAgent: String
  ) -> TokenRequest? {
    guard let url = p.login.introspectionURL else { return nil }
    switch p.login.introspectionMethod {
    case .rfc7662:
      return TokenRequestBuilder.authenticated(
        provider: p, secrets: secrets, url: url,
        fields: [("token", token), ("token_type_hint", "access_token")], extraParams: false,
        requestID: requestID, userAgent: userAgent)
    case .bearerQuery:
      let full =
        url + (url.contains("?") ? "&" : "?") + TokenRequestBuilder.formEncode([("bearer_token", token)])
      var request = TokenRequest(
        url: full,
        headers: [("Accept", "application/json"), ("User-Agent", userAgent), ("X-Request-ID", requestID)],
        body: [], usesRefreshToken: false)
      request.method = "GET"
      return request
    }
  }
}

/// The device authorization response (RFC 8628 section 3.2).
package struct DeviceAuthorization: Sendable, Equatable, CustomStringConvertible {
  package var deviceCode: String
  package var userCode: String
  package var verificationURI: String
  package var verificationURIComplete: String?
  package var expiresIn: Double
  package var interval: Double

  package init(
    deviceCode: String, userCode: String, verificationURI: String, verificationURIComplete: String? = nil,
    expiresIn: Double, interval: Double = 5
  ) {
    self.deviceCode = deviceCode
    self.userCode = userCode
    self.verificationURI = verificationURI
    self.verificationURIComplete = verificationURIComplete
    self.expiresIn = expiresIn
    self.interval = interval
  }

  /// Never shows the device code (it is a bearer credential until the login ends).
  package var description: String { "DeviceAuthorization(user_code: \(userCode), uri: \(verificationURI))" }

  /// Reads a 2xx answer; `verification_url` (an older draft's name, Google's) is read too.
  package static func parse(_ body: [UInt8]) -> Result<DeviceAuthorization, UpstreamFailure> {
    func bad(_ why: String) -> Result<DeviceAuthorization, UpstreamFailure> {
      .failure(UpstreamFailure(.retryLater, message: "device authorization answer \(why)"))
    }
    guard let json = JSONValue.parse(body), json.object != nil else { return bad("is not a JSON object") }
    guard let device = json["device_code"]?.string, !device.isEmpty else { return bad("has no device_code") }
    guard let user = json["user_code"]?.string, !user.isEmpty else { return bad("has no user_code") }
    guard let uri = json["verification_uri"]?.string ?? json["verification_url"]?.string else {
      return bad("has no verification_uri")
    }
    let expires = json["expires_in"]?.numberOrNumericString ?? 600
    let interval = json["interval"]?.numberOrNumericString ?? 5
    guard expires > 0, expires <= 86_400 else { return bad("has an expires_in out of range") }
    return .success(
      DeviceAuthorization(
        deviceCode: device, userCode: user, verificationURI: uri,
        verificationURIComplete: json["verification_uri_complete"]?.string, expiresIn: expires,
        interval: min(max(interval, 1), 300)))
  }
}

import Testing

@testable import TokenBrokerCore

/// 2015-10-21T07:28:00Z, the instant of RFC 9110's `Retry-After` example date.
private let httpDateInstant: Double = 1_445_412_480

private func request(_ grant: RequestGrant) -> TokenRequest {
  var p = ProviderConfig(name: "pv", tokenURL: "https://platform.powerverse.com/auth/token", grant: .password)
  p.clientAuth = .none
  p.body = .json
  p.clientID = "cid"
  p.username = "operator@example.com"
  return TokenRequestBuilder.build(
    provider: p, secrets: ResolvedSecrets(password: "pw"), grant: grant, scopes: [], requestID: "r1",
    userAgent: "ua")
}

private func interpret(
  _ status: Int, headers: [String: String] = [:], body: String = "", grant: RequestGrant = .primary,
  scope: [String] = [], now: Double = 1_700_000_000
) -> Result<TokenResponse, UpstreamFailure> {
  let response = UpstreamResponse(status: status, headers: headers, body: Array(body.utf8))
  do {
    return .success(
      try TokenExchange.interpret(response, request: request(grant), requestedScope: scope, now: now))
  } catch {
    return .failure(error)
  }
}

private func failure(_ result: Result<TokenResponse, UpstreamFailure>) -> UpstreamFailure? {
  if case .failure(let f) = result { return f }
  return nil
}

@Suite struct TokenExchangeTests {
  @Test func successUsesTheParser() throws {
    let result = interpret(
      200, headers: ["Content-Type": "application/json"],
      body: #"{"access_token":"tok","token_type":"bearer","expires_in":3600,"refresh_token":"rt_new"}"#,
      scope: ["read:sites"], now: 1_000)
    let r = try result.get()
    #expect(r.token.accessToken == "tok")
    #expect(r.token.tokenType == "Bearer")
    #expect(r.token.issuedAt == 1_000)
    #expect(r.token.expiresAt == 4_600)
    #expect(r.token.scope == ["read:sites"])
    #expect(r.refreshToken == "rt_new")
  }

  @Test func any2xxUsesTheParser() throws {
    let r = try interpret(201, body: #"{"access_token":"tok","expires_in":60}"#, now: 10).get()
    #expect(r.token.expiresAt == 70)
    let f = try #require(failure(interpret(204)))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("empty"))
  }

  @Test func successWithoutAccessTokenFails() throws {
    let f = try #require(failure(interpret(200, body: #"{"expires_in":60}"#)))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("access_token"))
  }

  @Test func nonSuccessUsesTheClassifierWithRetryAfterSeconds() throws {
    let f = try #require(failure(interpret(503, headers: ["Retry-After": "120"])))
    #expect(f.kind == .retryLater)
    #expect(f.status == 503)
    #expect(f.retryAfter == 120)
  }

  @Test func retryAfterHeaderNameIsCaseInsensitive() throws {
    let f = try #require(failure(interpret(429, headers: ["RETRY-AFTER": "7"])))
    #expect(f.retryAfter == 7)
  }

  @Test func retryAfterHTTPDateIsRelativeToNow() throws {
    let f = try #require(
      failure(
        interpret(429, headers: ["retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"], now: httpDateInstant - 45)))
    #expect(f.kind == .retryLater)
    #expect(f.retryAfter == 45)
  }

  @Test func unparseableRetryAfterIsIgnored() throws {
    let f = try #require(failure(interpret(503, headers: ["Retry-After": "soon"])))
    #expect(f.kind == .retryLater)
    #expect(f.retryAfter == nil)
  }

  @Test func retryAfterDroppedForNonRetryableStatus() throws {
    let f = try #require(
      failure(interpret(400, headers: ["Retry-After": "60"], body: #"{"error":"invalid_scope"}"#)))
    #expect(f.kind == .configurationWrong)
    #expect(f.retryAfter == nil)
  }

  @Test func refreshGrantMakesInvalidGrantARefreshTokenRejection() throws {
    let body = #"{"error":"invalid_grant","error_description":"refresh token revoked"}"#
    let onRefresh = try #require(failure(interpret(400, body: body, grant: .refresh("rt_old"))))
    #expect(onRefresh.kind == .refreshTokenRejected)
    #expect(onRefresh.message == "refresh token revoked")
    let onPrimary = try #require(failure(interpret(400, body: body, grant: .primary)))
    #expect(onPrimary.kind == .credentialsRejected)
  }

  @Test func redirectLocationHeaderReachesTheMessage() throws {
    let f = try #require(failure(interpret(307, headers: ["Location": "https://auth.example.com/new"])))
    #expect(f.kind == .configurationWrong)
    #expect(f.message.contains("https://auth.example.com/new"))
    #expect(f.message.contains("redirects are not followed"))
  }

  @Test func upstreamResponseLowercasesHeaderNames() {
    let r = UpstreamResponse(status: 200, headers: ["Content-Type": "a", "X-Thing": "b"], body: [])
    #expect(r.headers == ["content-type": "a", "x-thing": "b"])
  }

  @Test func bodyCapIs64KiB() {
    #expect(TokenExchange.maxBodyBytes == 65_536)
  }
}

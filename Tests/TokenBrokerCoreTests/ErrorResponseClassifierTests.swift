import Foundation
import Testing

@testable import TokenBrokerCore

private func classify(
  _ status: Int, _ body: String = "", refresh: Bool = false, retryAfter: Double? = nil,
  location: String? = nil
) -> UpstreamFailure {
  ErrorResponseClassifier.classify(
    status: status, body: Array(body.utf8), usedRefreshToken: refresh, retryAfter: retryAfter,
    location: location)
}

private let html = "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Oops</h1></body></html>"

@Suite struct ErrorResponseClassifierTests {
  // MARK: RFC 6749 bodies

  @Test func invalidGrantOnRefreshIsRefreshTokenRejected() {
    let f = classify(
      400, #"{"error":"invalid_grant","error_description":"Refresh token expired"}"#, refresh: true)
    #expect(f.kind == .refreshTokenRejected)
    #expect(f.status == 400)
    #expect(f.code == "invalid_grant")
    #expect(f.message == "Refresh token expired")
    #expect(f.retryAfter == nil)
    #expect(f.description == "upstream 400 invalid_grant: Refresh token expired")
  }

  @Test func invalidGrantOnPrimaryGrantIsCredentialsRejected() {
    let f = classify(400, #"{"error":"invalid_grant","error_description":"Wrong password"}"#, refresh: false)
    #expect(f.kind == .credentialsRejected)
    #expect(f.code == "invalid_grant")
    #expect(f.message == "Wrong password")
  }

  @Test func invalidClientIsCredentialsRejected() {
    for refresh in [false, true] {
      let f = classify(
        401, #"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        refresh: refresh)
      #expect(f.kind == .credentialsRejected)
      #expect(f.code == "invalid_client")
      #expect(f.message == "Client authentication failed")
    }
  }

  @Test func errorCodeIsCaseInsensitive() {
    #expect(classify(400, #"{"error":"INVALID_CLIENT"}"#).kind == .credentialsRejected)
    #expect(classify(400, #"{"error":"Invalid_Grant"}"#, refresh: true).kind == .refreshTokenRejected)
    #expect(classify(400, #"{"error":"INVALID_SCOPE"}"#).kind == .configurationWrong)
  }

  @Test(arguments: ["invalid_scope", "unsupported_grant_type", "invalid_request"])
  func requestProblemsAreConfigurationWrong(_ code: String) {
    for refresh in [false, true] {
      let f = classify(400, "{\"error\":\"\(code)\",\"error_description\":\"nope\"}", refresh: refresh)
      #expect(f.kind == .configurationWrong)
      #expect(f.code == code)
      #expect(f.message == "nope")
    }
  }

  @Test func temporarilyUnavailableCodeIsRetryLaterWhateverTheStatus() {
    let f = classify(400, #"{"error":"temporarily_unavailable"}"#)
    #expect(f.kind == .retryLater)
    #expect(f.code == "temporarily_unavailable")
  }

  @Test func rfc6749ErrorWithoutDescriptionGetsADefaultMessage() {
    let f = classify(401, #"{"error":"invalid_client"}"#)
    #expect(f.kind == .credentialsRejected)
    #expect(f.message == "client credentials rejected (401); check client_id and client_secret")
  }

  @Test func messageFieldUsedWhenNoErrorDescription() {
    let f = classify(403, #"{"error":"access_denied","message":"account disabled"}"#)
    #expect(f.kind == .credentialsRejected)
    #expect(f.message == "account disabled")
  }

  @Test func unknownCodeFallsBackToStatus() {
    #expect(classify(401, #"{"error":"weird"}"#).kind == .credentialsRejected)
    #expect(classify(503, #"{"error":"weird"}"#).kind == .retryLater)
    #expect(classify(404, #"{"error":"weird"}"#).kind == .configurationWrong)
    #expect(classify(400, #"{"error":"weird"}"#).kind == .configurationWrong)
    #expect(classify(400, #"{"error":"weird"}"#, refresh: true).kind == .refreshTokenRejected)
  }

  // MARK: nested (Powerverse) bodies

  @Test func powerverseNestedUnauthorized() {
    let f = classify(401, #"{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}"#)
    #expect(f.kind == .credentialsRejected)
    #expect(f.status == 401)
    #expect(f.code == "UNAUTHORIZED")
    #expect(f.message == "Invalid or expired token")
    #expect(f.description == "upstream 401 UNAUTHORIZED: Invalid or expired token")
  }

  @Test func powerverseNestedForbidden() {
    let f = classify(
      403, #"{"error":{"code":"FORBIDDEN","message":"Insufficient permissions for this resource"}}"#)
    #expect(f.kind == .credentialsRejected)
    #expect(f.code == "FORBIDDEN")
    #expect(f.message == "Insufficient permissions for this resource")
  }

  @Test func nestedErrorWithoutMessageUsesStatusMessage() {
    let f = classify(500, #"{"error":{"code":"INTERNAL"}}"#)
    #expect(f.kind == .retryLater)
    #expect(f.code == "INTERNAL")
    #expect(f.message == "upstream server error (500)")
  }

  // MARK: empty bodies and status codes

  @Test(arguments: [500, 502, 503, 504])
  func serverErrorsWithEmptyBodyRetryLater(_ status: Int) {
    let f = classify(status)
    #expect(f.kind == .retryLater)
    #expect(f.status == status)
    #expect(f.code == nil)
    #expect(f.message == "upstream server error (\(status))")
  }

  @Test(arguments: [408, 425, 429])
  func transientClientStatusesRetryLater(_ status: Int) {
    #expect(classify(status).kind == .retryLater)
  }

  @Test func emptyBody401And403AreCredentialsRejected() {
    #expect(classify(401).kind == .credentialsRejected)
    #expect(classify(401).message == "client credentials rejected (401); check client_id and client_secret")
    #expect(classify(403).kind == .credentialsRejected)
    #expect(classify(403).message == "access forbidden (403); check the account's permissions")
  }

  @Test func emptyBody400() {
    let f = classify(400)
    #expect(f.kind == .configurationWrong)
    #expect(f.message == "status 400 with an empty body")
    #expect(classify(400, refresh: true).kind == .refreshTokenRejected)
  }

  // MARK: Retry-After

  @Test func rateLimitKeepsRetryAfter() {
    let f = classify(429, retryAfter: 30)
    #expect(f.kind == .retryLater)
    #expect(f.retryAfter == 30)
    #expect(f.message == "rate limited (429)")
  }

  @Test func unavailableKeepsRetryAfter() {
    let f = classify(503, retryAfter: 120)
    #expect(f.kind == .retryLater)
    #expect(f.retryAfter == 120)
  }

  @Test func badRequestDropsRetryAfter() {
    let f = classify(400, #"{"error":"invalid_request"}"#, retryAfter: 10)
    #expect(f.retryAfter == nil)
    #expect(classify(401, retryAfter: 10).retryAfter == nil)
  }

  // MARK: non-JSON bodies

  @Test func htmlBodyWith401IsCredentialsRejected() {
    let f = classify(401, html)
    #expect(f.kind == .credentialsRejected)
    #expect(f.code == nil)
    #expect(f.message == "client credentials rejected (401); check client_id and client_secret")
  }

  @Test func htmlBodyWith404IsConfigurationWrongAndNamesTokenURL() {
    let f = classify(404, html)
    #expect(f.kind == .configurationWrong)
    #expect(f.code == nil)
    #expect(f.message.contains("token_url"))
    #expect(f.message == "token endpoint not found (404); check token_url")
  }

  @Test func htmlBodyWith502RetriesLater() {
    let f = classify(502, html)
    #expect(f.kind == .retryLater)
    #expect(f.message == "upstream server error (502)")
  }

  @Test func unrecognisedBodyWithOtherStatus() {
    let f = classify(418, "I'm a teapot")
    #expect(f.kind == .configurationWrong)
    #expect(f.message == "status 418 with an unrecognised body")
  }

  @Test func jsonWithoutErrorFieldFallsBackToStatus() {
    let f = classify(401, #"{"status":"nope"}"#)
    #expect(f.kind == .credentialsRejected)
    #expect(f.code == nil)
  }

  // MARK: redirects

  @Test func redirectIsConfigurationWrongAndNotFollowed() {
    let f = classify(307, location: "https://auth.example.com/v2/token")
    #expect(f.kind == .configurationWrong)
    #expect(f.status == 307)
    #expect(f.message.contains("redirects are not followed"))
    #expect(f.message.contains("https://auth.example.com/v2/token"))
    #expect(f.message.contains("token_url"))
  }

  @Test(arguments: [301, 302, 303, 308])
  func otherRedirectsWithoutLocation(_ status: Int) {
    let f = classify(status)
    #expect(f.kind == .configurationWrong)
    #expect(f.message.contains("redirects are not followed"))
  }

  @Test func redirectLocationIsCleaned() {
    let f = classify(302, location: "https://evil.example/\r\nX: y")
    #expect(!f.message.contains("\r"))
    #expect(!f.message.contains("\n"))
  }

  // MARK: hostile text

  @Test func longMessagesAreTruncated() {
    let long = String(repeating: "x", count: 5000)
    let f = classify(400, "{\"error\":\"invalid_request\",\"error_description\":\"\(long)\"}")
    #expect(f.message == String(repeating: "x", count: 200) + "…")
    #expect(f.message.count == 201)
  }

  @Test func messageOfExactlyTheLimitIsKept() {
    let exact = String(repeating: "y", count: 200)
    let f = classify(400, "{\"error\":\"invalid_request\",\"error_description\":\"\(exact)\"}")
    #expect(f.message == exact)
  }

  @Test func longCodesAreTruncated() {
    let long = String(repeating: "c", count: 300)
    let f = classify(400, "{\"error\":\"\(long)\"}")
    #expect(f.code == String(repeating: "c", count: 200) + "…")
  }

  @Test func controlCharactersInMessagesReplaced() {
    let f = classify(
      400, #"{"error":"bad\r\ncode","error_description":"line1\nline2\r\n\u001b[31mred\u0000\u007f\tend"}"#)
    #expect(f.message == "line1 line2   [31mred   end")
    #expect(f.code == "bad  code")
    #expect(!f.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
  }

  @Test func controlCharactersInNestedMessagesReplaced() {
    let f = classify(401, #"{"error":{"code":"UNAUTHORIZED","message":"a\nb"}}"#)
    #expect(f.message == "a b")
  }

  // MARK: UpstreamFailure

  @Test func upstreamFailureDescriptions() {
    #expect(UpstreamFailure(.retryLater, message: "connection refused").description == "connection refused")
    #expect(
      UpstreamFailure(.retryLater, status: 503, message: "service unavailable").description
        == "upstream 503: service unavailable")
    #expect(FailureKind.credentialsRejected.rawValue == "credentials_rejected")
    #expect(FailureKind.refreshTokenRejected.rawValue == "refresh_token_rejected")
    #expect(FailureKind.configurationWrong.rawValue == "configuration_wrong")
    #expect(FailureKind.retryLater.rawValue == "retry_later")
  }
}

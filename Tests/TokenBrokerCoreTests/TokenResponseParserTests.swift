import Foundation
import Testing

@testable import TokenBrokerCore

private let now: Double = 1_700_000_000

private func parse(_ body: String, requestedScope: [String] = [], at time: Double = now)
  throws(UpstreamFailure)
  -> TokenResponse
{
  try TokenResponseParser.parse(body: Array(body.utf8), requestedScope: requestedScope, now: time)
}

/// The failure `body` is refused with; nil when it parses.
private func failure(_ body: String, at time: Double = now) -> UpstreamFailure? {
  do {
    _ = try parse(body, at: time)
    return nil
  } catch {
    return error
  }
}

/// A JWT with `payload` as its claims (base64url, no padding); header and signature are dummies.
private func jwt(_ payload: String) -> String {
  func b64url(_ s: String) -> String {
    Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
  }
  return b64url(#"{"alg":"RS256","typ":"JWT"}"#) + "." + b64url(payload) + ".c2lnbmF0dXJl"
}

@Suite struct TokenResponseParserTests {
  // MARK: access_token

  @Test func energySeedResponse() throws {
    let r = try parse(#"{"token_type":"Bearer","expires_in":3600,"access_token":"NgXCXRKc...Mz0Yjw="}"#)
    #expect(r.token.accessToken == "NgXCXRKc...Mz0Yjw=")
    #expect(r.token.tokenType == "Bearer")
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + 3600)
    #expect(r.token.scope == [])
    #expect(r.refreshToken == nil)
    #expect(r.token.authorizationValue == "Bearer NgXCXRKc...Mz0Yjw=")
  }

  @Test func missingAccessTokenIsRefused() throws {
    let f = try #require(failure(#"{"token_type":"Bearer","expires_in":3600}"#))
    #expect(f.kind == .retryLater)
    #expect(f.status == 200)
    #expect(f.message.contains("access_token"))
  }

  @Test func emptyAccessTokenIsRefused() throws {
    let f = try #require(failure(#"{"access_token":"","expires_in":3600}"#))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("access_token"))
  }

  @Test func nonStringAccessTokenIsRefused() throws {
    let f = try #require(failure(#"{"access_token":12345,"expires_in":3600}"#))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("access_token"))
  }

  @Test(arguments: [
    "abc\r\nX-Injected: 1", "abc\ndef", "tab\there", "nul\u{0}", "del\u{7F}", "n\u{F6}n-ascii",
  ])
  func accessTokenWithUnsafeCharactersIsRefused(_ token: String) throws {
    var object = JSONWriter.Object()
    object.field("access_token", token)
    object.field("expires_in", 3600)
    let body = String(decoding: object.finished(), as: UTF8.self)
    let f = try #require(failure(body))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("access_token"))
    #expect(!f.message.contains(token))
  }

  // MARK: token_type

  @Test(arguments: [
    (#""token_type":"bearer","#, "Bearer"),
    (#""token_type":"BEARER","#, "Bearer"),
    (#""token_type":"Bearer","#, "Bearer"),
    (#""token_type":"bEaReR","#, "Bearer"),
    ("", "Bearer"),
    (#""token_type":"MAC","#, "MAC"),
    (#""token_type":"DPoP","#, "DPoP"),
  ])
  func tokenType(_ field: String, _ expected: String) throws {
    let r = try parse("{\(field)\"access_token\":\"tok\",\"expires_in\":60}")
    #expect(r.token.tokenType == expected)
    #expect(r.token.authorizationValue == "\(expected) tok")
  }

  @Test func tokenTypeWithSpaceIsRefused() throws {
    let f = try #require(failure(#"{"access_token":"tok","token_type":"Bearer x","expires_in":60}"#))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("token_type"))
  }

  // MARK: expires_in

  @Test func expiresInNumericString() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":"3600"}"#)
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + 3600)
  }

  @Test func expiresInFractionalNumber() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":90.5}"#)
    #expect(r.token.expiresAt == now + 90.5)
  }

  @Test(arguments: [#""soon""#, #""""#, #""3600s""#, "[3600]", #"{"s":1}"#])
  func nonNumericExpiresInIsRefused(_ value: String) throws {
    let f = try #require(failure("{\"access_token\":\"tok\",\"expires_in\":\(value)}"))
    #expect(f.kind == .retryLater)
    #expect(f.status == 200)
    #expect(f.message.contains("expires_in"))
  }

  @Test(arguments: ["true", "false"])
  func booleanExpiresInIsRefused(_ value: String) throws {
    let f = try #require(failure("{\"access_token\":\"tok\",\"expires_in\":\(value)}"))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("expires_in is not a number"))
  }

  @Test(arguments: ["0", "-1", "-3600", #""0""#, #""-5""#])
  func nonPositiveExpiresInIsRefused(_ value: String) throws {
    let f = try #require(failure("{\"access_token\":\"tok\",\"expires_in\":\(value)}"))
    #expect(f.kind == .retryLater)
    #expect(f.message.contains("expires_in"))
  }

  @Test func jwtExpAndIatUsedWithoutExpiresIn() throws {
    let token = jwt(#"{"sub":"opr_abc123","iat":1699999900,"exp":1700003500}"#)
    let r = try parse("{\"access_token\":\"\(token)\",\"token_type\":\"Bearer\"}")
    #expect(r.token.accessToken == token)
    #expect(r.token.issuedAt == 1_699_999_900)
    #expect(r.token.expiresAt == 1_700_003_500)
  }

  @Test func jwtExpWithoutIatIssuedNow() throws {
    let token = jwt(#"{"sub":"opr_abc123","exp":1700001800}"#)
    let r = try parse("{\"access_token\":\"\(token)\"}")
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == 1_700_001_800)
  }

  /// A JWT `iat` a little ahead of this machine's clock counts as now (it never moves the
  /// refresh later); `exp` stays the expiry.
  @Test func jwtIatSlightlyInTheFutureCountsAsNow() throws {
    let token = jwt(#"{"iat":1700000250,"exp":1700000550}"#)
    let r = try parse("{\"access_token\":\"\(token)\"}")
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == 1_700_000_550)
  }

  @Test func jwtIatFarInTheFutureIgnored() throws {
    let token = jwt(#"{"iat":1700090000,"exp":1700093600}"#)
    let r = try parse("{\"access_token\":\"\(token)\"}")
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == 1_700_093_600)
  }

  // Found by fuzzing: lifetimes that no later `Int(...)` or timer can hold.

  @Test func hugeExpiresInClampedToTenYears() throws {
    let r = try parse(#"{"access_token":"a","expires_in":1e308,"created_at":1e308}"#)
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + TokenResponseParser.maxLifetime)
    #expect(TokenResponseParser.maxLifetime == 315_360_000)
  }

  @Test func hugeJWTExpClampedToTenYears() throws {
    let r = try parse("{\"access_token\":\"\(jwt(#"{"exp":1.8e19}"#))\"}")
    #expect(r.token.expiresAt == now + TokenResponseParser.maxLifetime)
  }

  @Test func hugeNegativeJWTIatClampedToTenYearsAgo() throws {
    let r = try parse("{\"access_token\":\"\(jwt(#"{"iat":-1e300,"exp":1700003600}"#))\"}")
    #expect(r.token.issuedAt == now - TokenResponseParser.maxLifetime)
    #expect(r.token.expiresAt == 1_700_003_600)
  }

  @Test func tokenExpiredOnArrivalIsRefused() throws {
    let f = failure("{\"access_token\":\"\(jwt(#"{"exp":1699999000}"#))\"}")
    #expect(f?.kind == .retryLater)
    #expect(f?.message.contains("already expired (1000 s ago") == true)
    let created = failure(#"{"access_token":"a","expires_in":60,"created_at":1699990000}"#)
    #expect(created?.message.contains("already expired") == true)
  }

  @Test func expiresInWinsOverJWTExp() throws {
    let token = jwt(#"{"iat":1699990000,"exp":1700001800}"#)
    let r = try parse("{\"access_token\":\"\(token)\",\"expires_in\":600}")
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + 600)
  }

  @Test func nullExpiresInFallsBackToJWT() throws {
    let token = jwt(#"{"exp":1700001800}"#)
    let r = try parse("{\"access_token\":\"\(token)\",\"expires_in\":null}")
    #expect(r.token.expiresAt == 1_700_001_800)
  }

  @Test func neitherExpiresInNorJWTAssumesDefaultLifetime() throws {
    #expect(TokenResponseParser.assumedLifetime == 3600)
    let r = try parse(#"{"access_token":"opaque-token"}"#)
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + TokenResponseParser.assumedLifetime)
  }

  @Test func jwtWithoutExpAssumesDefaultLifetime() throws {
    let token = jwt(#"{"sub":"x"}"#)
    let r = try parse("{\"access_token\":\"\(token)\"}")
    #expect(r.token.expiresAt == now + 3600)
  }

  // MARK: created_at

  @Test func placeOSSeedResponseHonoursCreatedAt() throws {
    let body = """
      { "access_token": "guxu05o", "token_type": "bearer", "expires_in": 7200, \
      "refresh_token": "CvUwMfso", "scope": "public", "created_at": 1642051911}
      """
    let r = try parse(body, requestedScope: ["public", "mqtt.read"], at: 1_642_051_921)
    #expect(r.token.accessToken == "guxu05o")
    #expect(r.token.tokenType == "Bearer")
    #expect(r.token.issuedAt == 1_642_051_911)
    #expect(r.token.expiresAt == 1_642_059_111)
    #expect(r.token.scope == ["public"])
    #expect(r.refreshToken == "CvUwMfso")
  }

  @Test func createdAtInThePastShortensRemainingLifetime() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":7200,"created_at":1699996400}"#)
    #expect(r.token.issuedAt == 1_699_996_400)
    #expect(r.token.expiresAt == 1_700_003_600)
    #expect(r.token.remaining(at: now) == 3600)
  }

  @Test func createdAtFarInTheFutureClampedToNow() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":7200,"created_at":1700086400}"#)
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + 7200)
  }

  /// A `created_at` ahead of this machine's clock (issuer skew) never lengthens the token:
  /// it expires `expires_in` after it arrived at the latest (security review M3(a)).
  @Test func createdAtSlightlyInTheFutureCountsAsNow() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":7200,"created_at":1700000060}"#)
    #expect(r.token.issuedAt == now)
    #expect(r.token.expiresAt == now + 7200)
    let skewed = try parse(#"{"access_token":"tok","expires_in":300,"created_at":1700000250}"#)
    #expect(skewed.token.expiresAt == now + 300)
  }

  @Test func createdAtAsNumericString() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":100,"created_at":"1699999950"}"#)
    #expect(r.token.issuedAt == 1_699_999_950)
    #expect(r.token.expiresAt == 1_700_000_050)
  }

  // MARK: scope

  @Test func grantedScopeStringSplitOnSpaces() throws {
    let r = try parse(
      #"{"access_token":"tok","expires_in":60,"scope":"read:sites read:assets"}"#, requestedScope: ["admin"])
    #expect(r.token.scope == ["read:sites", "read:assets"])
  }

  @Test func grantedScopeWithRepeatedSpaces() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":60,"scope":" a  b "}"#)
    #expect(r.token.scope == ["a", "b"])
  }

  @Test func grantedScopeArray() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":60,"scope":["a","b"]}"#)
    #expect(r.token.scope == ["a", "b"])
  }

  @Test func absentScopeIsTheRequestedOne() throws {
    let r = try parse(
      #"{"access_token":"tok","expires_in":60}"#, requestedScope: ["read:sites", "read:assets"])
    #expect(r.token.scope == ["read:sites", "read:assets"])
  }

  // MARK: refresh_token

  @Test func powerverseSeedResponsePicksUpRefreshToken() throws {
    let access =
      "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcHJfYWJjMTIzIiwiZXhwIjoxNzA0MDY3MjAwfQ.signature"
    let body = """
      {"access_token": "\(access)", "token_type": "Bearer", "expires_in": 3600,
      "refresh_token": "rt_xxxxxxxxxxxxxxxxxxxxxx"}
      """
    let r = try parse(body, at: 1_704_063_600)
    #expect(r.token.accessToken == access)
    #expect(r.token.issuedAt == 1_704_063_600)
    #expect(r.token.expiresAt == 1_704_067_200)
    #expect(r.refreshToken == "rt_xxxxxxxxxxxxxxxxxxxxxx")
  }

  @Test func emptyRefreshTokenIgnored() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":60,"refresh_token":""}"#)
    #expect(r.refreshToken == nil)
  }

  @Test func nonStringRefreshTokenIgnored() throws {
    let r = try parse(#"{"access_token":"tok","expires_in":60,"refresh_token":null}"#)
    #expect(r.refreshToken == nil)
  }

  // MARK: bodies that are not a token object

  /// A UTF-8 byte order mark before the object (some .NET servers send one) was read by
  /// Foundation and still is.
  @Test func byteOrderMarkBeforeTheObjectIsRead() throws {
    let body = [0xEF, 0xBB, 0xBF] + Array(#"{"access_token":"tok","expires_in":60}"#.utf8)
    let r = try TokenResponseParser.parse(body: body, requestedScope: [], now: now)
    #expect(r.token.accessToken == "tok")
    #expect(r.token.expiresAt == now + 60)
  }

  /// The reader is strict (RFC 8259): what is not JSON is refused as not a JSON object.
  @Test(arguments: [
    #"{"access_token":"tok",}"#, #"{"access_token":"tok","expires_in":01}"#,
    #"{"access_token":"tok\ud800"}"#, "{\"access_token\":\"t\u{1}ok\"}", #"{"access_token":"tok"} x"#,
  ])
  func malformedJSONIsRefused(_ body: String) throws {
    let f = try #require(failure(body))
    #expect(f.message.contains("JSON object"))
  }

  @Test func emptyBodyIsRefused() throws {
    let f = try #require(failure(""))
    #expect(f.kind == .retryLater)
    #expect(f.status == 200)
    #expect(f.message.contains("empty"))
  }

  @Test(arguments: [
    "<html><body>Service Unavailable</body></html>", "[1,2,3]", #"[{"access_token":"tok"}]"#, #""tok""#, "42",
    "null", #"{"access_token":"tok""#, "access_token=tok&expires_in=3600",
  ])
  func nonObjectBodyIsRefused(_ body: String) throws {
    let f = try #require(failure(body))
    #expect(f.kind == .retryLater)
    #expect(f.status == 200)
    #expect(f.message.contains("JSON object"))
  }

  // MARK: descriptions never show secrets

  @Test func descriptionsNeverShowTokens() throws {
    let r = try parse(
      #"{"access_token":"AT-very-secret-1","expires_in":60,"refresh_token":"RT-very-secret-2","scope":"s1"}"#)
    for text in ["\(r)", "\(r.token)", String(describing: r), String(reflecting: r.token)] {
      #expect(!text.contains("AT-very-secret-1"))
      #expect(!text.contains("RT-very-secret-2"))
      #expect(text.contains("<redacted>"))
    }
    #expect("\(r.token)".contains("s1"))
  }

  @Test func tokenResponseWithoutRefreshTokenSaysNone() throws {
    let r = try parse(#"{"access_token":"AT-very-secret-1","expires_in":60}"#)
    #expect("\(r)".contains("refresh_token: none"))
    #expect(!"\(r)".contains("AT-very-secret-1"))
  }

  // MARK: Token arithmetic

  @Test func tokenRemainingAndLifetime() {
    let t = Token(accessToken: "a", tokenType: "Bearer", issuedAt: 100, expiresAt: 160, scope: [])
    #expect(t.lifetime == 60)
    #expect(t.remaining(at: 130) == 30)
    #expect(t.remaining(at: 200) == -40)
    let key = Token(accessToken: "k", tokenType: "Bearer", issuedAt: 100, expiresAt: nil, scope: [])
    #expect(key.lifetime == .infinity)
    #expect(key.remaining(at: 1e12) == .infinity)
    #expect(key.description.contains("never"))
  }
}

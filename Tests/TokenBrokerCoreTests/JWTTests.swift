import Foundation
import Testing

@testable import TokenBrokerCore

/// base64url without padding.
private func b64url(_ s: String) -> String {
  Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

private func jwt(_ payload: String) -> String {
  b64url(#"{"alg":"HS256","typ":"JWT"}"#) + "." + b64url(payload) + ".c2lnbmF0dXJl"
}

@Suite struct JWTTests {
  @Test func expAndIat() throws {
    let claims = try #require(JWT.claims(of: jwt(#"{"sub":"x","iat":1704063600,"exp":1704067200}"#)))
    #expect(claims == JWT.Claims(exp: 1_704_067_200, iat: 1_704_063_600))
  }

  @Test func powerverseSeedToken() throws {
    let token =
      "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcHJfYWJjMTIzIiwiZXhwIjoxNzA0MDY3MjAwfQ.signature"
    let claims = try #require(JWT.claims(of: token))
    #expect(claims.exp == 1_704_067_200)
    #expect(claims.iat == nil)
  }

  @Test func urlSafeAlphabetAndMissingPadding() throws {
    // This payload's base64 holds both '+' and '/', i.e. '-' and '_' in base64url, and needs padding.
    let payload = #"{"sub":"~~~??>>","exp":1704067200}"#
    let encoded = b64url(payload)
    #expect(encoded == "eyJzdWIiOiJ-fn4_Pz4-IiwiZXhwIjoxNzA0MDY3MjAwfQ")
    let claims = try #require(JWT.claims(of: "eyJhbGciOiJub25lIn0.\(encoded).sig"))
    #expect(claims.exp == 1_704_067_200)
  }

  @Test(arguments: [1, 2, 3])
  func everyPaddingLength(_ extra: Int) throws {
    let payload = "{\"exp\":1704067200,\"p\":\"\(String(repeating: "x", count: extra))\"}"
    let claims = try #require(JWT.claims(of: jwt(payload)))
    #expect(claims.exp == 1_704_067_200)
  }

  @Test func fractionalAndStringClaims() throws {
    let claims = try #require(JWT.claims(of: jwt(#"{"exp":"1704067200","iat":1704063600.5}"#)))
    #expect(claims.exp == 1_704_067_200)
    #expect(claims.iat == 1_704_063_600.5)
  }

  @Test func emptySignatureIsAllowed() throws {
    let unsigned = b64url(#"{"alg":"none"}"#) + "." + b64url(#"{"exp":5}"#) + "."
    #expect(JWT.claims(of: unsigned) == JWT.Claims(exp: 5, iat: nil))
  }

  @Test func payloadWithoutTimeClaims() throws {
    let claims = try #require(JWT.claims(of: jwt(#"{"sub":"x","exp":null}"#)))
    #expect(claims.exp == nil)
    #expect(claims.iat == nil)
  }

  @Test(arguments: [
    "", "opaque-token", "NgXCXRKc...Mz0Yjw=", "a.b", "a.b.c.d", "..", "x.!!!.y",
    "eyJhbGciOiJub25lIn0." + b64url("[1,2]") + ".s",
    "eyJhbGciOiJub25lIn0." + b64url("not json") + ".s",
    "eyJhbGciOiJub25lIn0." + b64url(#""exp""#) + ".s",
    "eyJhbGciOiJub25lIn0.e.s",
  ])
  func malformed(_ token: String) {
    #expect(JWT.claims(of: token) == nil)
  }
}

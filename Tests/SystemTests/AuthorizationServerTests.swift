import Foundation
import Testing
import TokenBrokerTestSupport

/// A PKCE pair (RFC 7636, S256) made independently of the daemon: the challenge's SHA-256 is
/// openssl's.
struct PKCEPair {
  let verifier: String
  let challenge: String

  static func make() throws -> PKCEPair {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    let verifier = String((0..<64).map { _ in alphabet.randomElement()! })
    return PKCEPair(verifier: verifier, challenge: try base64URL(sha256(verifier)))
  }

  /// SHA-256 of `text` by `openssl dgst`.
  static func sha256(_ text: String) throws -> [UInt8] {
    let dir = try TempDirectory("tbpkce")
    let input = try dir.write("input", text)
    let result = try runToEnd("/usr/bin/openssl", ["dgst", "-sha256", "-r", input])
    let hex = result.stdout.prefix { $0.isHexDigit }
    guard result.status == 0, hex.count == 64 else { throw SetupError("openssl dgst: \(result.stderr)") }
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
      let next = hex.index(index, offsetBy: 2)
      bytes.append(UInt8(hex[index..<next], radix: 16)!)
      index = next
    }
    return bytes
  }

  static func base64URL(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
  }
}

/// The query of `url` as a dictionary (the last value of a repeated name).
func queryItems(_ url: String) -> [String: String] {
  var result: [String: String] = [:]
  for item in URLComponents(string: url)?.queryItems ?? [] { result[item.name] = item.value ?? "" }
  return result
}

extension AuthorizationServerFixture {
  /// The authorization request a client sends the browser to (code flow, S256 challenge).
  func authorizationURL(
    redirectURI: String, state: String, challenge: String?, scope: String = "read"
  ) -> String {
    var items = [
      ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI), ("scope", scope),
      ("state", state),
    ]
    if let challenge { items += [("code_challenge", challenge), ("code_challenge_method", "S256")] }
    return authorizeURL + "?" + LoopbackHTTP.formBody(items)
  }

  /// The code exchange with `client_secret_post`.
  func exchange(code: String, redirectURI: String, verifier: String?) throws -> LoopbackHTTP.Response {
    var fields = [
      ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
      ("client_id", clientID), ("client_secret", clientSecret),
    ]
    if let verifier { fields.append(("code_verifier", verifier)) }
    return try LoopbackHTTP.postForm(tokenURL, fields)
  }

  /// A refresh with HTTP Basic client authentication.
  func refresh(_ refreshToken: String) throws -> LoopbackHTTP.Response {
    try LoopbackHTTP.postForm(
      tokenURL, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)],
      basic: (clientID, clientSecret))
  }

  /// A full login as a client does it: PKCE, state, the real forms, the code exchange; the
  /// token answer (access_token, refresh_token, ...).
  func login(redirectURI: String = "http://127.0.0.1:49152/callback") throws -> [String: Any] {
    let pkce = try PKCEPair.make()
    let state = UUID().uuidString
    let location = try approve(
      authorizationURL: authorizationURL(redirectURI: redirectURI, state: state, challenge: pkce.challenge))
    let query = queryItems(location)
    guard query["state"] == state, let code = query["code"] else { throw SetupError("no code: \(location)") }
    let answer = try exchange(code: code, redirectURI: redirectURI, verifier: pkce.verifier)
    guard answer.status == 200 else { throw SetupError("code exchange: \(answer)") }
    return try answer.json()
  }
}

extension SystemSuite {
  /// The real authorization server the daemon's end-to-end login tests run against, proved
  /// on its own: its login and consent forms, PKCE, rotation with reuse detection,
  /// introspection and revocation behave as the daemon will rely on.
  @Suite("Real authorization server (django-oauth-toolkit)") struct AuthorizationServerTests {
    @Test func codeWithPKCEThroughTheLoginFormThenRotationIntrospectionAndRevocation() throws {
      let server = try AuthorizationServerFixture()
      print("authorization server ready in \(String(format: "%.2f", server.startSeconds)) s")
      let pkce = try PKCEPair.make()
      let state = UUID().uuidString
      // A loopback redirect URI with a port chosen at request time (registered without one).
      let redirectURI = "http://127.0.0.1:49152/callback"
      let location = try server.approve(
        authorizationURL: server.authorizationURL(
          redirectURI: redirectURI, state: state, challenge: pkce.challenge))
      #expect(location.hasPrefix(redirectURI + "?"), "\(location)")
      let query = queryItems(location)
      #expect(query["state"] == state)
      let code = try #require(query["code"], "\(location)")
      #expect(!code.isEmpty)

      let first = try server.exchange(code: code, redirectURI: redirectURI, verifier: pkce.verifier)
      try #require(first.status == 200, "\(first)")
      let tokens = try first.json()
      let access1 = try #require(tokens["access_token"] as? String)
      let refresh1 = try #require(tokens["refresh_token"] as? String)
      #expect((tokens["token_type"] as? String)?.lowercased() == "bearer")
      #expect((tokens["expires_in"] as? Int ?? 0) > 0)
      #expect(tokens["scope"] as? String == "read")
      // A code is used once.
      let again = try server.exchange(code: code, redirectURI: redirectURI, verifier: pkce.verifier)
      #expect(again.status == 400 && (try? again.json())?["error"] as? String == "invalid_grant", "\(again)")

      let info = try server.introspect(token: access1)
      #expect(info["active"] as? Bool == true, "\(info)")
      #expect(info["client_id"] as? String == server.clientID)
      #expect(info["username"] as? String == server.username)
      #expect(info["scope"] as? String == "read")

      // Rotation: a new refresh token with every refresh.
      let rotated = try server.refresh(refresh1)
      try #require(rotated.status == 200, "\(rotated)")
      let access2 = try #require(try rotated.json()["access_token"] as? String)
      let refresh2 = try #require(try rotated.json()["refresh_token"] as? String)
      #expect(refresh2 != refresh1 && access2 != access1)
      #expect(try server.isActive(access2))

      // RFC 7009: revoking the refresh token ends it and its access token.
      let revoked = try LoopbackHTTP.postForm(
        server.revokeURL,
        [
          ("token", refresh2), ("token_type_hint", "refresh_token"), ("client_id", server.clientID),
          ("client_secret", server.clientSecret),
        ])
      #expect(revoked.status == 200, "\(revoked)")
      #expect(try server.isActive(access2) == false)
      let afterRevocation = try server.refresh(refresh2)
      #expect(afterRevocation.status == 400, "\(afterRevocation)")
      #expect((try? afterRevocation.json())?["error"] as? String == "invalid_grant")
    }

    @Test func aReplayedRefreshTokenRevokesItsWholeFamily() throws {
      let server = try AuthorizationServerFixture()
      // The registered redirect URI itself (no port) is accepted too.
      let tokens = try server.login(redirectURI: server.redirectURI)
      let refresh1 = try #require(tokens["refresh_token"] as? String)
      let rotated = try server.refresh(refresh1)
      try #require(rotated.status == 200, "\(rotated)")
      let access2 = try #require(try rotated.json()["access_token"] as? String)
      let refresh2 = try #require(try rotated.json()["refresh_token"] as? String)
      #expect(try server.isActive(access2))

      let replay = try server.refresh(refresh1)
      #expect(
        replay.status == 400 && (try? replay.json())?["error"] as? String == "invalid_grant", "\(replay)")
      // The whole family is gone: the newest refresh token and its access token too.
      #expect(try server.isActive(access2) == false)
      let newest = try server.refresh(refresh2)
      #expect(
        newest.status == 400 && (try? newest.json())?["error"] as? String == "invalid_grant", "\(newest)")
    }

    @Test func pkceIsRequiredAndChecked() throws {
      let server = try AuthorizationServerFixture()
      let redirectURI = "http://127.0.0.1:50000/callback"
      // No challenge: the authorization request itself is refused (redirected with an error).
      let state = UUID().uuidString
      let refused = try server.approve(
        authorizationURL: server.authorizationURL(redirectURI: redirectURI, state: state, challenge: nil))
      #expect(refused.hasPrefix(redirectURI + "?"), "\(refused)")
      #expect(queryItems(refused)["error"] == "invalid_request", "\(refused)")
      #expect(queryItems(refused)["code"] == nil)

      // A verifier that does not match the challenge (RFC 7636 4.6), or none at all.
      let pkce = try PKCEPair.make()
      let other = try PKCEPair.make()
      for (verifier, error) in [(other.verifier, "invalid_grant"), (nil, "invalid_request")] {
        let location = try server.approve(
          authorizationURL: server.authorizationURL(
            redirectURI: redirectURI, state: state, challenge: pkce.challenge)
        )
        let code = try #require(queryItems(location)["code"], "\(location)")
        let answer = try server.exchange(code: code, redirectURI: redirectURI, verifier: verifier)
        #expect(answer.status == 400, "\(answer)")
        #expect((try? answer.json())?["error"] as? String == error, "\(answer)")
      }
      // The matching verifier redeems a fresh code.
      let location = try server.approve(
        authorizationURL: server.authorizationURL(
          redirectURI: redirectURI, state: state, challenge: pkce.challenge))
      let code = try #require(queryItems(location)["code"], "\(location)")
      let answer = try server.exchange(code: code, redirectURI: redirectURI, verifier: pkce.verifier)
      #expect(answer.status == 200, "\(answer)")
    }

    @Test func cancelOnTheConsentFormRedirectsWithAccessDenied() throws {
      let server = try AuthorizationServerFixture()
      let pkce = try PKCEPair.make()
      let state = UUID().uuidString
      let redirectURI = "http://127.0.0.1:50001/callback"
      let location = try server.deny(
        authorizationURL: server.authorizationURL(
          redirectURI: redirectURI, state: state, challenge: pkce.challenge))
      #expect(location.hasPrefix(redirectURI + "?"), "\(location)")
      #expect(queryItems(location)["error"] == "access_denied", "\(location)")
      #expect(queryItems(location)["state"] == state)
      #expect(queryItems(location)["code"] == nil)
      // A redirect URI that is not registered (another path) is never redirected to.
      let error = #expect(throws: SetupError.self) {
        try server.approve(
          authorizationURL: server.authorizationURL(
            redirectURI: "http://127.0.0.1:50001/elsewhere", state: state, challenge: pkce.challenge))
      }
      #expect(error?.description.contains("Mismatching redirect URI") == true, "\(String(describing: error))")
    }
  }
}

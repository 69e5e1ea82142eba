import Foundation
import Glibc
import Testing
import TokenBrokerClient
import TokenBrokerTestSupport

extension BrokerClient {
  /// A request with a JSON body; the answer whatever its status.
  func request(_ method: String, _ path: String, json: String) async throws -> UnixHTTPClient.Response {
    let client = UnixHTTPClient(socketPath: socketPath)
    return try await offload { try client.request(method, path, body: Array(json.utf8)) }
  }
}

extension SystemSuite {
  /// token-brokerd against a real authorization server (django-oauth-toolkit, see
  /// ``AuthorizationServerFixture``): the login by code + PKCE through the socket API with the
  /// server's real login and consent forms, a forced refresh that rotates, the served token
  /// active at the server's introspection endpoint, and a logout that makes it inactive.
  @Suite("token-brokerd with a real authorization server") struct RealAuthorizationServerTests {
    @Test func loginRotationIntrospectionAndLogout() async throws {
      let server = try await offload { try AuthorizationServerFixture() }
      let dir = try TempDirectory("tbst")
      let socketPath = dir.file("d.sock")
      let statePath = dir.file("state/dot.state")
      let config = try dir.write(
        "broker.toml",
        brokerTable([
          "socket = \"\(socketPath)\"", "state_dir = \"\(dir.file("state"))\"", "log_target = \"console\"",
        ])
          + """
          [providers.dot]
          grant = "authorization_code"
          token_url = "\(server.tokenURL)"
          authorize_url = "\(server.authorizeURL)"
          revocation_url = "\(server.revokeURL)"
          introspection_url = "\(server.introspectURL)"
          client_auth = "client_secret_post"
          client_id = "\(server.clientID)"
          client_secret = "\(server.clientSecret)"
          scopes = ["read"]

          """)
      let notify = try NotifyListener(path: dir.file("notify"))
      let daemon = try ChildProcess(
        try BuiltBinaries.tokenBrokerd, ["--config", config], environment: ["NOTIFY_SOCKET": notify.path],
        outputIn: dir, name: "daemon")
      try daemon.start()
      defer { daemon.send(SIGTERM) }
      try await offload { try notify.wait(for: "READY=1") }
      let client = BrokerClient(socketPath: socketPath)

      // No refresh token yet: the status names the command to run.
      let before = try await client.request("GET", "/v1/status")
      let entry = try #require(
        (try client.json(before))["providers"].flatMap { $0 as? [[String: Any]] }?.first {
          $0["name"] as? String == "dot"
        })
      #expect(entry["state"] as? String == "needs_login", "\(before.text)")
      #expect((entry["last_error"] as? String)?.contains("tokenctl login dot") == true, "\(before.text)")

      // The login: the daemon makes the authorization URL (a port of our choosing on the
      // port-less registered redirect URI), the fixture plays the browser on the real forms.
      let redirectURI = "http://127.0.0.1:49153/callback"
      let started = try await client.request(
        "POST", "/v1/providers/dot/login", json: #"{"method":"browser","redirect_uri":"\#(redirectURI)"}"#)
      try #require(started.status == 200, "\(started.text)")
      let authorizationURL = try #require(try client.json(started)["authorization_url"] as? String)
      let request = queryItems(authorizationURL)
      #expect(authorizationURL.hasPrefix(server.authorizeURL + "?"))
      #expect(
        request["code_challenge_method"] == "S256" && request["redirect_uri"] == redirectURI, "\(request)")
      let location = try await offload { try server.approve(authorizationURL: authorizationURL) }
      let code = try #require(queryItems(location)["code"], "\(location)")
      let completed = try await client.request(
        "POST", "/v1/providers/dot/login/complete", json: #"{"redirect_url":"\#(location)"}"#)
      try #require(completed.status == 200, "\(completed.text)\n\(daemon.stderr)")
      #expect(try client.json(completed)["state"] as? String == "ok", "\(completed.text)")
      let refresh1 = try refreshToken(in: statePath)

      // The served token is one the server issued to this client for this user.
      let access1 = try await client.token("dot")
      // (blocking for a moment: the daemon is another process, nothing here needs the pool)
      let info1 = try server.introspect(token: access1)
      #expect(info1["active"] as? Bool == true, "\(info1)")
      #expect(info1["client_id"] as? String == server.clientID)
      #expect(info1["username"] as? String == server.username)
      // The daemon's own inspection goes through the same RFC 7662 endpoint.
      let inspected = try client.json(try await client.request("GET", "/v1/token/dot/info"))
      #expect(inspected["format"] as? String == "opaque", "\(inspected)")
      #expect((inspected["introspection"] as? [String: Any])?["active"] as? Bool == true, "\(inspected)")

      // A forced refresh rotates: a new refresh token persisted, a new access token served,
      // the old one dead at the server.
      let refreshed = try await client.request("POST", "/v1/providers/dot/refresh")
      #expect(refreshed.status == 200, "\(refreshed.text)")
      let refresh2 = try refreshToken(in: statePath)
      #expect(refresh2 != refresh1)
      let access2 = try await client.token("dot")
      #expect(access2 != access1)
      #expect(try await offload { try server.isActive(access2) })
      #expect(try await offload { try server.isActive(access1) } == false)

      // Logout revokes at the server: the served token is inactive, the refresh token dead,
      // the provider needs a login again and serves nothing.
      let logout = try await client.request("POST", "/v1/providers/dot/logout")
      #expect(logout.status == 200, "\(logout.text)")
      #expect(try client.json(logout)["revoked"] as? Bool == true, "\(logout.text)")
      #expect(try client.json(logout)["state"] as? String == "needs_login", "\(logout.text)")
      #expect(try await offload { try server.isActive(access2) } == false)
      let replay = try await offload { try server.refresh(refresh2) }
      #expect(replay.status == 400, "\(replay)")
      #expect((try? refreshToken(in: statePath)) == nil, "the refresh token is forgotten")
      #expect(try await client.request("GET", "/v1/token/dot").status != 200)

      daemon.send(SIGTERM)
      #expect(try await offload { try daemon.waitForExit() } == 0, "stderr: \(daemon.stderr)")
      // Nothing secret in the daemon's log.
      let log = daemon.stdout + daemon.stderr
      for secret in [server.clientSecret, code, refresh1, refresh2, access1, access2] {
        #expect(!log.contains(secret), "a secret in the daemon's log: \(log)")
      }
    }

    /// The refresh token the daemon persisted for a provider (its state file is JSON).
    private func refreshToken(in path: String) throws -> String {
      let data = try Data(contentsOf: URL(fileURLWithPath: path))
      guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
        let token = object["refresh_token"] as? String
      else { throw SetupError("no refresh_token in \(path)") }
      return token
    }
  }
}

import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Every dialect of the seeds, end to end: fake upstream → engine → socket → client.
@Suite struct DialectTests {
  @Test func energyClientCredentialsBasicForm() async throws {
    try await Single.with(.energy) { s async throws in
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 200)
      #expect(r.json["access_token"] as? String == s.upstream.issuedAccessTokens.last)
      #expect(r.json["token_type"] as? String == "Bearer")
      #expect(r.json["expires_in"] as? Int == 3600)
      let req = try #require(s.upstream.requests.first)
      #expect(req.form == ["grant_type": "client_credentials"])
      #expect(req.headers["authorization"]?.hasPrefix("Basic ") == true)
      #expect(req.headers["user-agent"] == "token-broker/\(BrokerVersion.current)")
      #expect(req.headers["x-request-id"]?.count == 16)
      #expect(s.leaks().isEmpty)
    }
  }

  @Test func requestIDOfEachRequestAppearsInItsLogLine() async throws {
    try await Single.with(.energy) { s async throws in
      let id = try #require(s.upstream.requests.first?.headers["x-request-id"])
      #expect(s.harness.logs.events("refreshed").map { $0.metadata["request_id"] } == [id])
    }
  }

  @Test func powerverseClientCredentialsJSONWithSecretInBody() async throws {
    try await Single.with(.powerverse, grant: .clientCredentials) { s async throws in
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 200)
      let req = try #require(s.upstream.requests.first)
      #expect(
        req.json == [
          "grant_type": "client_credentials", "client_id": "client-1", "client_secret": "s3cret-client",
        ])
      #expect(req.headers["authorization"] == nil)
      #expect(s.leaks().isEmpty)
    }
  }

  @Test func powernautBasicWithNoBodyAndNoGrantType() async throws {
    try await Single.with(.powernaut) { s async throws in
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 200)
      let req = try #require(s.upstream.requests.first)
      #expect(req.body.isEmpty)
      #expect(req.headers["content-type"] == nil)
      #expect(req.headers["content-length"] == "0")
      // The JWT carries exp; expires_in is what the upstream said.
      #expect(r.json["header"] as? String == "Authorization: Bearer \(s.upstream.issuedAccessTokens[0])")
    }
  }

  @Test func placeOSPasswordJSONWithScopeLowercaseBearerAndCreatedAt() async throws {
    let clock = ManualClock()
    var settings = FakeUpstream.Settings()
    settings.lifetime = 7200
    try await Single.with(
      .placeos, scopes: ["public", "mqtt.read"], upstreamSettings: settings, clock: clock
    ) { s async throws in
      let req = try #require(s.upstream.requests.first)
      #expect(req.json["grant_type"] == "password")
      #expect(req.json["username"] == "operator@example.com")
      #expect(req.json["scope"] == "mqtt.read public")
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.json["token_type"] as? String == "Bearer")
      #expect(r.json["expires_in"] as? Int == 7200)
      #expect(r.json["scope"] as? String == "mqtt.read public")
    }
  }

  @Test func passwordGrantWithFormBody() async throws {
    try await Single.with(.formPassword) { s async throws in
      let req = try #require(s.upstream.requests.first)
      #expect(req.form["grant_type"] == "password")
      #expect(req.form["password"] == "pa55word")
      #expect(try await s.harness.get("/v1/token/p").status == 200)
    }
  }

  @Test func powerversePasswordGrantJSON() async throws {
    try await Single.with(.powerverse, grant: .password, scopes: ["read:sites", "read:assets"]) {
      s async throws in
      let req = try #require(s.upstream.requests.first)
      #expect(
        req.json == [
          "grant_type": "password", "username": "operator@example.com", "password": "pa55word",
          "client_id": "client-1",
          "scope": "read:assets read:sites",
        ])
      #expect(await s.status().state == .ok)
    }
  }

  @Test func expiresInAsStringAndJWTExpOnly() async throws {
    var a = FakeUpstream.Settings()
    a.expiresInAsString = true
    a.lifetime = 900
    let s1 = try await Single.start(.energy, upstreamSettings: a)
    #expect(try await s1.harness.get("/v1/token/p").json["expires_in"] as? Int == 900)
    await s1.stop()
    var b = FakeUpstream.Settings()
    b.jwtExpiryOnly = true
    b.lifetime = 1200
    let s2 = try await Single.start(.energy, upstreamSettings: b)
    #expect(try await s2.harness.get("/v1/token/p").json["expires_in"] as? Int == 1200)
    await s2.stop()
  }

  @Test func apiKeyServedWithItsHeaderAndNoUpstream() async throws {
    var p = ProviderConfig(name: "key", tokenURL: "", grant: .apiKey)
    p.apiKeyHeader = "X-API-Key"
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["key": ResolvedSecrets(apiKey: "ak_live_123456")])
    defer { Task { await h.shutdown() } }
    let r = try await h.get("/v1/token/key")
    #expect(r.status == 200)
    #expect(r.json["header"] as? String == "X-API-Key: ak_live_123456")
    #expect(r.json["token_type"] as? String == "api_key")
    #expect(r.json["expires_in"] is NSNull)
    #expect(try await h.get("/v1/token/key", accept: "text/plain").text == "ak_live_123456")
    #expect(await h.status("key")?.state == .ok)
    #expect(h.logs.leaks(of: ["ak_live_123456"]).isEmpty)
  }

  @Test func textPlainIsTheTokenAlone() async throws {
    try await Single.with(.energy) { s async throws in
      let r = try await s.harness.get("/v1/token/p", accept: "text/plain")
      #expect(r.status == 200)
      #expect(r.text == s.upstream.issuedAccessTokens.last)
      #expect(r.headers["content-type"] == "text/plain")
    }
  }
}

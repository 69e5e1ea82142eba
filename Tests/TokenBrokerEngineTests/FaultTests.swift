import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Upstream misbehaviour through the real HTTP client: every fault is
/// classified, the valid token keeps being served, and recovery follows.
@Suite struct FaultTests {
  static func withStarted(timeout: Double = 1, _ body: (Single) async throws -> Void) async throws {
    var settings = BrokerSettings.testDefaults
    settings.requestTimeout = timeout
    try await Single.with(.energy, settings: settings, body)
  }

  /// Triggers one refresh with `fault` and returns the provider's status after it.
  static func refresh(_ s: Single, with fault: FakeUpstream.Fault) async throws -> ProviderStatus {
    s.upstream.failNext(fault)
    let r = try await s.harness.post("/v1/providers/p/refresh")
    #expect(r.status == 200)
    return await s.status()
  }

  @Test(arguments: [
    (FakeUpstream.Fault.stall, "no complete answer within request_timeout (1 s)"),
    (.slowBody(interval: 0.2), "no complete answer within request_timeout (1 s)"),
    (.oversized(70_000), "response body larger than 64 KiB"),
    (.malformedJSON, "upstream 200: token endpoint answered 200 with a body that is not a JSON object"),
    (.status(500, body: "<html>oops</html>"), "upstream 500: upstream server error (500)"),
    (.status(200, body: #"{"token_type":"Bearer"}"#), "upstream 200: token response has no access_token"),
  ])
  func faultIsReportedAndTheValidTokenStillServed(fault: FakeUpstream.Fault, message: String) async throws {
    try await Self.withStarted { s async throws in
      let before = try #require(s.upstream.issuedAccessTokens.first)
      let status = try await Self.refresh(s, with: fault)
      #expect(status.state == .degraded)
      #expect(status.lastError == message)
      #expect(status.failures == 1)
      let r = try await s.harness.get("/v1/token/p")
      #expect(r.status == 200)
      #expect(r.json["access_token"] as? String == before)
      // Healed upstream: the next scheduled attempt recovers.
      await s.clock.advanceToNextTimer()
      #expect(await s.status().state == .ok)
    }
  }

  @Test func redirectIsNotFollowed() async throws {
    try await Self.withStarted { s async throws in
      let status = try await Self.refresh(s, with: .redirect(to: "http://127.0.0.1:1/elsewhere"))
      #expect(
        status.lastError?.contains("redirects to http://127.0.0.1:1/elsewhere; redirects are not followed")
          == true)
      #expect(s.upstream.requestCount == 2)
      // Configuration errors retry only at the cap.
      #expect(status.nextRefresh == s.clock.now() + 300)
    }
  }

  @Test func nestedErrorObjectsAreUnderstood() async throws {
    try await Self.withStarted { s async throws in
      let status = try await Self.refresh(
        s,
        with: .status(401, body: #"{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}"#))
      #expect(status.lastError == "upstream 401 UNAUTHORIZED: Invalid or expired token")
      #expect(status.nextRefresh == s.clock.now() + 300)
    }
  }

  @Test func connectionRefusedIsATransientFailure() async throws {
    let clock = ManualClock()
    var p = ProviderConfig(name: "gone", tokenURL: "http://127.0.0.1:1/token", grant: .clientCredentials)
    p.clientID = "x"
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["gone": ResolvedSecrets(clientSecret: "y-secret")], clock: clock)
    defer { Task { await h.shutdown() } }
    await h.firstAttempts()
    let status = try #require(await h.status("gone"))
    #expect(status.state == .failed)
    #expect(status.lastError?.contains("onnection refused") == true, "\(status.lastError ?? "")")
    #expect(status.nextRefresh == clock.now() + 1)
    let r = try await h.get("/v1/token/gone")
    #expect(r.status == 503)
    #expect(r.headers["retry-after"] == "1")
  }

  @Test func upstreamTextEchoingASecretIsRedacted() async throws {
    try await Self.withStarted { s async throws in
      let status = try await Self.refresh(
        s,
        with: .status(
          400, body: #"{"error":"invalid_request","error_description":"bad secret s3cret-client"}"#))
      #expect(status.lastError == "upstream 400 invalid_request: bad secret [redacted]")
      #expect(s.leaks().isEmpty)
    }
  }

  @Test func aSecretCutInTwoByTheLengthCapIsStillRedacted() async throws {
    try await Self.withStarted { s async throws in
      // The provider's text is capped at 200 characters; the secret straddles the cut.
      let padding = String(repeating: "a", count: 195)
      let status = try await Self.refresh(
        s,
        with: .status(
          400, body: #"{"error":"invalid_request","error_description":"\#(padding) s3cret-client"}"#))
      let lastError = try #require(status.lastError)
      #expect(!lastError.contains("s3cr"), "\(lastError)")
      #expect(s.leaks().isEmpty)
    }
  }

  @Test func echoedBasicCredentialsAndEncodedSecretsAreRedacted() async throws {
    try await Self.withStarted { s async throws in
      // base64("client-1:s3cret-client"), as an Authorization header echoed back.
      let basic = "Y2xpZW50LTE6czNjcmV0LWNsaWVudA=="
      let status = try await Self.refresh(
        s,
        with: .status(
          400,
          body: #"{"error":"invalid_request","error_description":"got Basic \#(basic)"}"#))
      let lastError = try #require(status.lastError)
      #expect(!lastError.contains(basic), "\(lastError)")
      #expect(lastError.contains("[redacted]"))
    }
  }
}

import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerTestSupport

/// `GET /metrics` is valid Prometheus text and carries the broker's series.
@Suite struct MetricsTests {
  /// Parses the text exposition format strictly enough to catch malformed output.
  static func parse(_ text: String) throws -> [String: Double] {
    var samples: [String: Double] = [:]
    var typed: Set<String> = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
      if line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ")
        #expect(parts.count == 4)
        #expect(["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])))
        typed.insert(String(parts[2]))
        continue
      }
      if line.hasPrefix("#") { continue }
      let pattern =
        #/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)$/#
      let m = try #require(try pattern.wholeMatch(in: String(line)), "not a sample line: \(line)")
      let name = String(m.output.1)
      let family = typed.first { name == $0 || name.hasPrefix($0 + "_") }
      #expect(family != nil, "\(name) has no # TYPE")
      samples[String(line.split(separator: " ").dropLast().joined(separator: " "))] = Double(m.output.4)
    }
    return samples
  }

  @Test func metricsParseAsPrometheusTextWithTheBrokersSeries() async throws {
    try await Single.with(.energy, name: "energy") { s async throws in
      _ = try await s.harness.get("/v1/token/energy")
      _ = try await s.harness.get("/v1/token/nope")
      s.upstream.failNext(.status(503))
      _ = try await s.harness.post("/v1/providers/energy/refresh")
      let r = try await s.harness.get("/metrics")
      #expect(r.status == 200)
      #expect(r.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
      let samples = try Self.parse(r.text)
      #expect(samples[#"token_broker_refreshes_total{provider="energy"}"#] == 1)
      #expect(samples[#"token_broker_refresh_failures_total{provider="energy",reason="retry_later"}"#] == 1)
      #expect(samples[#"token_broker_requests_total{endpoint="token",status="200"}"#] == 1)
      #expect(samples[#"token_broker_requests_total{endpoint="token",status="404"}"#] == 1)
      #expect(samples[#"token_broker_token_expires_in_seconds{provider="energy"}"#] == 3600)
      #expect(samples[#"token_broker_token_age_seconds{provider="energy"}"#] == 0)
      #expect(
        samples.keys.contains {
          $0.hasPrefix(#"token_broker_request_duration_seconds_bucket{endpoint="token""#)
        })
      #expect(!r.text.contains(s.upstream.issuedAccessTokens[0]))
    }
  }

  /// `/metrics` names every provider with its state and expiry: admins only, 403 for others
  /// like `/v1/reload` (security review L1).
  @Test func metricsAnswerOnlyAdmins() async throws {
    var settings = BrokerSettings.testDefaults
    settings.admins = [.gid(3001)]
    try await Single.with(
      .energy, name: "energy", settings: settings, tweak: { p, _ in p.allow = [.uid(1001)] }
    ) {
      s async throws in
      let api = SocketAPI(broker: s.harness.broker, logger: s.harness.logs.logger())
      func status(_ peer: PeerCredentials) async -> (Int, String) {
        let r = await api.handle(ServerRequest(method: .GET, uri: "/metrics", peer: peer))
        return (Int(r.status.code), String(decoding: r.body, as: UTF8.self))
      }
      let user = await status(PeerCredentials(pid: 9, uid: 1001, gid: 1001, groups: []))
      #expect(user.0 == 403)
      #expect(user.1.contains(#""code":"forbidden""#))
      #expect(!user.1.contains("energy"))
      #expect(await status(PeerCredentials(pid: 9, uid: 4242, gid: 4242, groups: [])).0 == 403)
      #expect(await status(PeerCredentials(pid: 9, uid: 1005, gid: 1005, groups: [3001])).0 == 200)
      #expect(try await s.harness.get("/metrics").status == 200)  // root
    }
  }

  @Test func aProviderRemovedByAReloadLeavesNoGauges() async throws {
    try await Single.with(.energy, name: "energy") { s async throws in
      _ = try Self.parse(try await s.harness.get("/metrics").text)
      let config = BrokerConfig(broker: s.harness.config.broker, providers: [])
      await s.harness.broker.apply(
        LoadedConfig(config: config, secrets: [:], access: AccessResolver.resolve(config).0, warnings: []))
      let samples = try Self.parse(try await s.harness.get("/metrics").text)
      #expect(!samples.keys.contains { $0.contains("provider_up") || $0.contains("expires_in_seconds") })
      // Counters keep their history.
      #expect(samples[#"token_broker_refreshes_total{provider="energy"}"#] == 1)
    }
  }
}

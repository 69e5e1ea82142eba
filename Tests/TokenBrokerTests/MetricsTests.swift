import Foundation
import Testing
import TokenBroker
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
}

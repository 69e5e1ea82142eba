import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

@Suite struct SingleFlightTests {
  @Test func thousandConcurrentRequestsForAColdScopeSetMakeOneUpstreamRequest() async throws {
    try await Single.with(.energy, scopes: ["a"], allowed: ["a", "b"]) { s async throws in
      #expect(s.upstream.requestCount == 1)
      let engine = try #require(s.harness.broker.engine(named: "p"))
      let results = await withTaskGroup(of: Result<Token, ServeFailure>.self) { group in
        for _ in 0..<1000 {
          group.addTask { await engine.token(scopes: ScopeSet(["a", "b"]), minValid: nil) }
        }
        var out: [Result<Token, ServeFailure>] = []
        for await r in group { out.append(r) }
        return out
      }
      #expect(results.count == 1000)
      let tokens = Set(results.compactMap { try? $0.get().accessToken })
      #expect(tokens.count == 1)
      #expect(s.upstream.requestCount == 2)
    }
  }

  @Test func concurrentSocketRequestsForAColdTokenShareOneFetch() async throws {
    try await Single.with(.energy, scopes: ["a"], allowed: ["a", "b"]) { s async throws in
      let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<64 { group.addTask { try await s.harness.get("/v1/token/p?scope=b").status } }
        var out: [Int] = []
        for try await r in group { out.append(r) }
        return out
      }
      #expect(statuses == Array(repeating: 200, count: 64))
      #expect(s.upstream.requests.filter { $0.form["scope"] == "b" }.count == 1)
    }
  }

  @Test func oneUpstreamRequestAtATimePerCredential() async throws {
    // Two scope sets refreshing at the same moment never overlap upstream.
    try await Single.with(.formPassword, scopes: ["a"], allowed: ["a", "b"]) { s async throws in
      s.upstream.failNext(.delayed(0.05), times: 2)
      async let one = s.harness.get("/v1/token/p?scope=b")
      async let two = s.harness.get("/v1/token/p?scope=a%20b")
      let statuses = try await [one.status, two.status]
      #expect(statuses == [200, 200])
      // The password provider's refresh token is used strictly in sequence.
      let refreshTokens = s.upstream.requests.compactMap { $0.form["refresh_token"] }
      #expect(refreshTokens.count == 2)
      #expect(Set(refreshTokens).count == refreshTokens.count)
      #expect(s.upstream.familyRevoked == false)
    }
  }
}

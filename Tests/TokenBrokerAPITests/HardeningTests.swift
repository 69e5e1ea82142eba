import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerTestSupport

/// Request hardening: caps, deadlines, connection limits. Bad input never
/// gets a 500 and never stops the daemon.
@Suite struct HardeningTests {
  static func withBroker(limits: ServerLimits = ServerLimits(), _ body: (BrokerHarness) async throws -> Void)
    async throws
  {
    var p = ProviderConfig(name: "key", tokenURL: "", grant: .apiKey)
    p.apiKeyHeader = "X-API-Key"
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["key": ResolvedSecrets(apiKey: "ak_test_1234")], limits: limits)
    do { try await body(h) } catch {
      await h.shutdown()
      throw error
    }
    await h.shutdown()
  }

  /// The first line (Swift treats "\r\n" as one Character, so split on the string).
  static func statusLine(_ answer: String) -> String { answer.components(separatedBy: "\r\n")[0] }

  @Test func oversizedRequestTargetAndHeadersGet431() async throws {
    try await Self.withBroker { h in
      let longTarget = try RawSocket(path: h.socketPath)
      try longTarget.send(
        "GET /v1/token/key?x=\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n")
      #expect(
        Self.statusLine(await longTarget.receive { $0.contains("\r\n\r\n") })
          == "HTTP/1.1 431 Request Header Fields Too Large")
      let manyHeaders = try RawSocket(path: h.socketPath)
      let headers = (0..<100).map { "X-H\($0): v\r\n" }.joined()
      try manyHeaders.send("GET /v1/token/key HTTP/1.1\r\n\(headers)\r\n")
      #expect(
        Self.statusLine(await manyHeaders.receive { $0.contains("\r\n\r\n") }).hasPrefix("HTTP/1.1 431"))
      let huge = try RawSocket(path: h.socketPath)
      try huge.send("GET /v1/token/key HTTP/1.1\r\nX-Big: \(String(repeating: "b", count: 100_000))\r\n\r\n")
      #expect(Self.statusLine(await huge.receive { $0.contains("\r\n\r\n") }).hasPrefix("HTTP/1.1 431"))
      #expect(try await h.get("/v1/token/key").status == 200)
    }
  }

  @Test func aClientTooSlowToSendItsRequestGets408() async throws {
    var limits = ServerLimits()
    limits.requestDeadline = 0.2
    try await Self.withBroker(limits: limits) { h in
      let slow = try RawSocket(path: h.socketPath)
      try slow.send("GET /v1/token/key HTTP/1.1\r\nHost:")
      let answer = await slow.receive { $0.contains("}}") }
      #expect(Self.statusLine(answer) == "HTTP/1.1 408 Request Timeout")
      #expect(answer.contains(#""code":"request_timeout""#))
      #expect(await slow.isClosedByPeer())
      #expect(try await h.get("/v1/token/key").status == 200)
    }
  }

  @Test func idleKeepAliveConnectionsAreClosed() async throws {
    var limits = ServerLimits()
    limits.idleTimeout = 0.2
    try await Self.withBroker(limits: limits) { h in
      let c = try RawSocket(path: h.socketPath)
      try c.send("GET /v1/token/key HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n")
      #expect(await c.receive { $0.hasSuffix("ak_test_1234") }.hasPrefix("HTTP/1.1 200"))
      // No further request: the daemon closes the connection, without an answer.
      #expect(await c.isClosedByPeer())
    }
  }

  @Test func connectionsOverTheLimitAreRefusedCleanlyAndOthersKeepBeingServed() async throws {
    var limits = ServerLimits()
    limits.maxConnections = 2
    try await Self.withBroker(limits: limits) { h in
      var held = [try RawSocket(path: h.socketPath), try RawSocket(path: h.socketPath)]
      for c in held {
        try c.send("GET /v1/token/key HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(
          Self.statusLine(await c.receive { $0.contains("}\n") || $0.hasSuffix("\n") }) == "HTTP/1.1 200 OK")
      }
      let third = try RawSocket(path: h.socketPath)
      let refused = await third.receive { $0.contains("}}") }
      #expect(Self.statusLine(refused) == "HTTP/1.1 503 Service Unavailable")
      #expect(refused.contains("Retry-After: 1"))
      // The held connections still work.
      try held[0].send("GET /v1/token/key HTTP/1.1\r\nHost: x\r\n\r\n")
      #expect(Self.statusLine(await held[0].receive { $0.contains("ak_test_1234") }) == "HTTP/1.1 200 OK")
      held.removeAll()
      // Once they are gone, new clients are served again (the count drops as the kernel reports the close).
      var status = 0
      for _ in 0..<200 where status != 200 {
        status = (try? await h.get("/v1/token/key").status) ?? 0
      }
      #expect(status == 200)
    }
  }

  @Test func aClientThatDisconnectsMidRequestCostsNothing() async throws {
    try await Self.withBroker { h in
      for _ in 0..<50 {
        let c = try RawSocket(path: h.socketPath)
        try c.send("GET /v1/token/key HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
      }
      #expect(try await h.get("/v1/token/key").status == 200)
    }
  }

  @Test(arguments: [
    "GET\r\n\r\n", "\u{00}\u{01}\u{02}\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
    "GET /v1/token/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /v1/token/key?scope=%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n",
    "DELETE /v1/status HTTP/1.1\r\nHost: x\r\n\r\n",
  ])
  func garbageNeverGetsA500(request: String) async throws {
    try await Self.withBroker { h in
      let c = try RawSocket(path: h.socketPath)
      try c.send(request)
      let answer = await c.receive { $0.hasSuffix("}}\n") }
      let code = Int(Self.statusLine(answer).dropFirst(9).prefix(3)) ?? 0
      #expect((400..<500).contains(code), "answer: \(answer.debugDescription)")
      #expect(try await h.get("/v1/token/key").status == 200)
    }
  }
  @Test func pipelinedRequestsAreAnsweredInOrderEvenWhenOneWaitsForTheEngines() async throws {
    try await Self.withBroker { h in
      let c = try RawSocket(path: h.socketPath)
      // status goes through the engines (async); the cached token is answered on the loop.
      try c.send(
        "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/token/key HTTP/1.1\r\nAccept: text/plain\r\n\r\n"
          + "HEAD /v1/token/key HTTP/1.1\r\n\r\nGET /v1/token/key HTTP/1.0\r\nAccept: text/plain\r\n\r\n")
      let answer = await c.receive { $0.components(separatedBy: "ak_test_1234").count == 3 }
      let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map {
        $0.components(separatedBy: "\r\n")[0]
      }
      #expect(statuses == ["200 OK", "200 OK", "405 Method Not Allowed", "200 OK"], "answer: \(answer)")
      let status = try #require(answer.range(of: #""providers""#))
      let token = try #require(answer.range(of: "ak_test_1234"))
      #expect(status.lowerBound < token.lowerBound)
      // HEAD: head only; HTTP/1.0: the answer closes the connection.
      #expect(answer.hasSuffix("Connection: close\r\n\r\nak_test_1234"))
      #expect(await c.isClosedByPeer())
    }
  }

  @Test func aChunkedBodyIsReadAndAMalformedOneIsRefusedWithItsReason() async throws {
    try await Self.withBroker { h in
      let good = try RawSocket(path: h.socketPath)
      try good.send(
        "POST /v1/providers/key/refresh HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
      let answer = await good.receive { $0.contains("\r\n\r\n") && $0.hasSuffix("\n") }
      #expect(Self.statusLine(answer).hasPrefix("HTTP/1.1 2"), "answer: \(answer)")
      let bad = try RawSocket(path: h.socketPath)
      try bad.send("POST /v1/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
      let refused = await bad.receive { $0.hasSuffix("}}\n") }
      #expect(Self.statusLine(refused) == "HTTP/1.1 400 Bad Request")
      #expect(refused.contains(#""message":"a chunk size that is not hexadecimal""#))
      #expect(await bad.isClosedByPeer())
      #expect(try await h.get("/v1/token/key").status == 200)
    }
  }
}

import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerTestSupport

/// The socket API's answers and error shapes (README "The socket API").
@Suite struct SocketAPITests {
  func errorCode(_ r: UnixHTTPClient.Response) -> String? {
    (r.json["error"] as? [String: Any])?["code"] as? String
  }

  /// Tests run as root, an admin: only admins get the 404 and its did-you-mean.
  @Test func unknownProviderGets404WithDidYouMeanForAnAdmin() async throws {
    try await Single.with(.energy, name: "energy") { s async throws in
      let r = try await s.harness.get("/v1/token/enrgy")
      #expect(r.status == 404)
      #expect(errorCode(r) == "unknown_provider")
      #expect(
        ((r.json["error"] as? [String: Any])?["message"] as? String)?.contains("did you mean 'energy'?")
          == true)
    }
  }

  @Test func unknownPathWrongMethodAndBadMinValid() async throws {
    try await Single.with(.energy) { s async throws in
      let missing = try await s.harness.get("/v2/whatever")
      #expect(missing.status == 404)
      #expect(errorCode(missing) == "not_found")
      let wrong = try await s.harness.post("/v1/token/p")
      #expect(wrong.status == 405)
      #expect(wrong.headers["allow"] == "GET")
      let bad = try await s.harness.get("/v1/token/p?min_valid=soon")
      #expect(bad.status == 400)
      #expect(errorCode(bad) == "bad_request")
    }
  }

  @Test func statusListsProvidersWithoutTokensOrSecrets() async throws {
    try await Single.with(.energy) { s async throws in
      let r = try await s.harness.get("/v1/status")
      #expect(r.status == 200)
      #expect(r.json["version"] as? String == BrokerVersion.current)
      let providers = try #require(r.json["providers"] as? [[String: Any]])
      #expect(providers.count == 1)
      let p = providers[0]
      #expect(p["name"] as? String == "p")
      #expect(p["grant"] as? String == "client_credentials")
      #expect(p["state"] as? String == "ok")
      #expect(p["expires_in"] as? Int == 3600)
      #expect(p["failures"] as? Int == 0)
      #expect(p["next_refresh"] as? String != nil)
      for secret in s.upstream.issuedAccessTokens + ["s3cret-client"] {
        #expect(!r.text.contains(secret))
      }
    }
  }

  @Test func adminRefreshFetchesANewToken() async throws {
    try await Single.with(.energy) { s async throws in
      let r = try await s.harness.post("/v1/providers/p/refresh")
      #expect(r.status == 200)
      #expect(r.json["state"] as? String == "ok")
      #expect(s.upstream.requestCount == 2)
      #expect(
        try await s.harness.get("/v1/token/p").json["access_token"] as? String
          == s.upstream.issuedAccessTokens[1])
    }
  }

  @Test func keepAliveServesManyRequestsOnOneConnection() async throws {
    try await Single.with(.energy) { s async throws in
      let raw = try RawSocket(path: s.harness.socketPath)
      let one = "GET /v1/token/p HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
      try raw.send(String(repeating: one, count: 3))
      let answer = await raw.receive(until: { $0.components(separatedBy: "HTTP/1.1 200 OK").count == 4 })
      #expect(answer.components(separatedBy: s.upstream.issuedAccessTokens[0]).count == 4)
    }
  }

  @Test func garbageGets400AndTheDaemonKeepsServing() async throws {
    try await Single.with(.energy) { s async throws in
      let raw = try RawSocket(path: s.harness.socketPath)
      try raw.send("\u{01}\u{02} nonsense\r\n\r\n")
      let answer = await raw.receive(until: { $0.contains("\r\n\r\n") })
      #expect(answer.hasPrefix("HTTP/1.1 400"))
      #expect(try await s.harness.get("/v1/token/p").status == 200)
    }
  }

  @Test func oversizedBodyGets413() async throws {
    try await Single.with(.energy) { s async throws in
      let raw = try RawSocket(path: s.harness.socketPath)
      try raw.send("POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
      let answer = await raw.receive(until: { $0.contains("\r\n\r\n") })
      #expect(answer.hasPrefix("HTTP/1.1 413"))
    }
  }

  /// The cached answer is rendered once per refresh; only `expires_in` follows the clock.
  @Test func cachedAnswerCountsDownWithTheClock() async throws {
    try await Single.with(.energy) { s async throws in
      let first = try await s.harness.get("/v1/token/p").json
      await s.clock.advance(by: 10)
      let later = try await s.harness.get("/v1/token/p").json
      let expiresIn = try #require(first["expires_in"] as? Int)
      #expect(later["expires_in"] as? Int == expiresIn - 10)
      for key in ["provider", "access_token", "token_type", "expires_at", "scope", "header"] {
        #expect(later[key] as? String == first[key] as? String, "\(key)")
      }
      #expect(first["access_token"] as? String == s.upstream.issuedAccessTokens[0])
      #expect(s.upstream.requestCount == 1)
    }
  }

  @Test func acceptChoosesPlainOnlyWhenJSONIsNotNamed() async throws {
    try await Single.with(.energy) { s async throws in
      let token = s.upstream.issuedAccessTokens[0]
      for accept in ["text/plain", "TEXT/Plain; q=1", "text/plain;charset=utf-8"] {
        #expect(try await s.harness.get("/v1/token/p", accept: accept).text == token, "\(accept)")
      }
      for accept in ["application/json", "*/*", "text/plain, application/json", ""] {
        #expect(
          try await s.harness.get("/v1/token/p", accept: accept).json["access_token"] as? String == token,
          "\(accept)")
      }
    }
  }

  @Test func servingACachedTokenDoesNoUpstreamWork() async throws {
    try await Single.with(.energy) { s async throws in
      for _ in 0..<100 { #expect(try await s.harness.get("/v1/token/p").status == 200) }
      #expect(s.upstream.requestCount == 1)
    }
  }

  // MARK: Empty scope (security review H3)

  /// `scope=+`, `scope=%20%20`, `scope=` and a bare `scope` name no scope: 400 invalid_scope,
  /// and the upstream never sees a request without `scope` (its default could be every scope).
  @Test func emptyScopeIsInvalidScopeAndNeverReachesUpstream() async throws {
    try await Single.with(.energy, scopes: ["read"], allowed: ["read", "write"]) { s async throws in
      for query in ["scope=+", "scope=%20%20", "scope=", "scope", "scope=+++&min_valid=5"] {
        for accept in ["application/json", "text/plain"] {
          let r = try await s.harness.get("/v1/token/p?\(query)", accept: accept)
          #expect(r.status == 400, "\(query)")
          #expect(errorCode(r) == "invalid_scope", "\(query)")
          let message = (r.json["error"] as? [String: Any])?["message"] as? String
          #expect(message?.contains("leave scope out for the provider's default scopes") == true, "\(query)")
        }
      }
      #expect(try await s.harness.get("/v1/token/p?scope=write").status == 200)
      #expect(s.upstream.requestCount == 2)
      #expect(s.upstream.requests.map { $0.form["scope"] } == ["read", "write"])
    }
  }

  // MARK: Callers who may not use a provider (security review L1, L6)

  static let stranger = PeerCredentials(pid: 4242, uid: 4242, gid: 4242, groups: [4243])

  /// The broker's own handler asked as `peer` (tests in process run as root, who passes
  /// every check): what a client of another uid gets over the socket.
  static func ask(
    _ api: SocketAPI, _ uri: String, post: Bool = false, as peer: PeerCredentials = stranger
  ) async -> (status: Int, code: String?, message: String) {
    let r = await api.handle(ServerRequest(method: post ? .POST : .GET, uri: uri, peer: peer))
    let error = (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["error"]
    let fields = error as? [String: Any]
    return (Int(r.status.code), fields?["code"] as? String, fields?["message"] as? String ?? "")
  }

  /// A caller who may not use NAME cannot tell whether NAME exists: the same 403 for a known
  /// and an unknown provider, no did-you-mean; only admins get 404 and the suggestion.
  @Test func strangerGetsTheSame403ForKnownAndUnknownProviders() async throws {
    try await Single.with(.energy, name: "energy", tweak: { p, _ in p.allow = [.uid(1001)] }) {
      s async throws in
      let api = SocketAPI(broker: s.harness.broker, logger: s.harness.logs.logger())
      let known = await Self.ask(api, "/v1/token/energy")
      let unknown = await Self.ask(api, "/v1/token/enrgy")
      #expect(known.status == 403 && unknown.status == 403)
      #expect(known.code == "forbidden" && unknown.code == "forbidden")
      #expect(unknown.message == known.message.replacingOccurrences(of: "energy", with: "enrgy"))
      #expect(!unknown.message.contains("did you mean"))

      let refreshKnown = await Self.ask(api, "/v1/providers/energy/refresh", post: true)
      let refreshUnknown = await Self.ask(api, "/v1/providers/enrgy/refresh", post: true)
      #expect(refreshKnown.status == 403 && refreshUnknown.status == 403)
      #expect(refreshKnown.message == refreshUnknown.message)

      // Allowed on energy, not an admin: still no suggestion for a name it may not use.
      let user = PeerCredentials(pid: 1001, uid: 1001, gid: 1001, groups: [])
      #expect(await Self.ask(api, "/v1/token/energy", as: user).status == 200)
      let typo = await Self.ask(api, "/v1/token/enrgy", as: user)
      #expect(typo.status == 403)
      #expect(!typo.message.contains("did you mean"))

      let root = PeerCredentials(pid: 1, uid: 0, gid: 0, groups: [])
      let admin = await Self.ask(api, "/v1/token/enrgy", as: root)
      #expect(admin.status == 404)
      #expect(admin.code == "unknown_provider")
      #expect(admin.message.contains("did you mean 'energy'?"))
      #expect(await Self.ask(api, "/v1/providers/enrgy/refresh", post: true, as: root).status == 404)
    }
  }

  /// 1000 refusals of one uid make one log line; the next one after the window says how
  /// many were left out, and a long path is cut.
  @Test func refusalsAreLoggedOncePerUidPerWindow() async throws {
    try await Single.with(.energy, name: "energy") { s async throws in
      let logs = LogCapture()
      let api = SocketAPI(broker: s.harness.broker, logger: logs.logger())
      let long = "/v1/token/" + String(repeating: "x", count: 4000)
      for i in 0..<1000 {
        let status = await Self.ask(api, i.isMultiple(of: 2) ? "/v1/token/energy" : long).status
        #expect(status == 403)
      }
      #expect(logs.events("denied").count == 1)
      let first = try #require(logs.events("denied").first)
      #expect(first.metadata["caller_uid"] == "4242")
      #expect(first.metadata["provider"] == "energy")
      #expect(first.metadata["suppressed"] == nil)

      let other = PeerCredentials(pid: 5, uid: 4343, gid: 4343, groups: [])
      _ = await Self.ask(api, "/metrics", as: other)
      #expect(logs.events("denied").count == 2)

      await s.clock.advance(by: 9)
      _ = await Self.ask(api, long)
      #expect(logs.events("denied").count == 2)
      await s.clock.advance(by: 1)
      _ = await Self.ask(api, long)
      let lines = logs.events("denied")
      #expect(lines.count == 3)
      let last = try #require(lines.last)
      #expect(last.metadata["suppressed"] == "1000")
      #expect(last.message.contains("(and 1000 more from this uid not logged)"))
      #expect(last.message.utf8.count < 200)
      #expect(!last.description.contains(String(repeating: "x", count: 129)))
      #expect(last.message.contains("/v1/token/" + String(repeating: "x", count: 118) + "..."))
    }
  }
}

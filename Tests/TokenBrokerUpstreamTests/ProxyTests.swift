import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

@testable import TokenBrokerUpstream

/// `[broker] https_proxy`: upstream requests through an HTTP proxy's `CONNECT` tunnel, against
/// a proxy in the test process that misbehaves on demand (README "Proxy").
@Suite struct ProxyTests {
  /// A provider at `https://auth.example.com:PORT` behind the proxy: the broker never resolves
  /// the name (the proxy does), checks the certificate against it, and the proxy relays only
  /// TLS: neither the client secret nor the request's form is in what it saw.
  @Test func aTokenComesThroughTheTunnelWithTLSEndToEnd() async throws {
    let proxy = try await ConnectProxy.start()
    let cert = try await TestCertificate.make(names: "DNS:auth.example.com")
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, now: { clock.now() })
    try await upstream.start(tls: cert)
    var (p, secrets) = SeedProviders.config("tls", for: upstream)
    p.tokenURL = p.tokenURL.replacing("//127.0.0.1:", with: "//auth.example.com:")
    p.caFile = cert.certificatePath
    var settings = BrokerSettings.testDefaults
    settings.httpsProxy = proxy.proxy
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["tls": secrets], settings: settings, clock: clock)
    await h.firstAttempts()
    let status = try #require(await h.status("tls"))
    #expect(status.state == .ok, "\(status.lastError ?? "")")
    #expect(proxy.targets == ["auth.example.com:\(upstream.port)"])
    #expect(try await h.get("/v1/token/tls").status == 200)
    let relayed = String(decoding: proxy.relayedFromClients, as: UTF8.self)
    #expect(!proxy.relayedFromClients.isEmpty)
    #expect(!relayed.contains("grant_type") && !relayed.contains("POST "))
    let secret = try #require(secrets.clientSecret)
    #expect(!relayed.contains(secret))
    await h.shutdown()
    await upstream.stop()
    await proxy.stop()
  }

  /// A loopback endpoint is reached directly (`[broker] no_proxy` is decided the same way:
  /// `UpstreamProxyTests`).
  @Test func aLoopbackEndpointIsReachedDirectly() async throws {
    let proxy = try await ConnectProxy.start()
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.config("direct", for: upstream)
    var settings = BrokerSettings.testDefaults
    settings.httpsProxy = proxy.proxy
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["direct": secrets], settings: settings, clock: clock)
    await h.firstAttempts()
    #expect(await h.status("direct")?.state == .ok)
    #expect(proxy.targets.isEmpty)
    await h.shutdown()
    await upstream.stop()
    await proxy.stop()
  }

  /// One request to a plain-HTTP server on loopback through `proxy` (the transport is told to
  /// use it; the engine's rule would send loopback hosts directly).
  static func send(through proxy: UpstreamProxy, timeout: Double = 5) async throws -> (
    Result<UpstreamResponse, UpstreamFailure>, ScriptedServer
  ) {
    let server = try await ScriptedServer(answer: { _ in (HTTPTokenTransportTests.ok("{}"), false) })
    let request = TokenRequest(
      url: "http://127.0.0.1:\(server.port)/t", headers: [], body: Array("a=b".utf8), usesRefreshToken: false)
    do throws(UpstreamFailure) {
      return (
        .success(
          try await HTTPTokenTransportTests.transport.send(
            request, caFile: nil, proxy: proxy, timeout: timeout)), server
      )
    } catch {
      return (.failure(error), server)
    }
  }

  @Test func aRequestGoesThroughTheTunnel() async throws {
    let proxy = try await ConnectProxy.start()
    let (result, server) = try await Self.send(through: proxy.proxy)
    #expect((try? result.get())?.status == 200)
    #expect(proxy.targets == ["127.0.0.1:\(server.port)"])
    #expect(server.requests.count == 1)
    #expect(server.requests.first?.hasPrefix("POST /t HTTP/1.1\r\n") == true)
    await server.stop()
    await proxy.stop()
  }

  @Test func aProxyThatAsksForCredentialsSaysSo() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.behave(.refuse(status: 407, reason: "Proxy Authentication Required"))
    let (result, server) = try await Self.send(through: proxy.proxy)
    let message = Self.message(result)
    #expect(
      message
        == "the proxy \(proxy.url) ([broker] https_proxy) refused CONNECT 127.0.0.1:\(server.port): 407 Proxy Authentication Required; it asks for credentials: set [broker] https_proxy_user and https_proxy_password"
    )
    #expect(server.requests.isEmpty)
    await server.stop()
    await proxy.stop()
  }

  /// `https_proxy_user` and `https_proxy_password` go to the proxy as `Proxy-Authorization:
  /// Basic` on CONNECT; the endpoint never sees them.
  @Test func aProxyThatAsksForCredentialsGetsThem() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.requireCredential(user: "broker", password: "pw-Zq81 x")
    var through = proxy.proxy
    through.credential = ProxyCredential(user: "broker", password: "pw-Zq81 x")
    let (result, server) = try await Self.send(through: through)
    #expect((try? result.get())?.status == 200, "\(Self.message(result))")
    #expect(proxy.authorizations == ["Basic YnJva2VyOnB3LVpxODEgeA=="])
    #expect(server.requests.count == 1)
    #expect(server.requests.first.map { !$0.lowercased().contains("proxy-authorization") } == true)
    await server.stop()
    await proxy.stop()
  }

  /// Credentials the proxy does not take: said, with the user and the keys, never the password.
  @Test func credentialsTheProxyRefusesAreNamedNeverShown() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.requireCredential(user: "broker", password: "right")
    var through = proxy.proxy
    through.credential = ProxyCredential(user: "broker", password: "wrong-Zq81")
    let (result, server) = try await Self.send(through: through)
    let message = Self.message(result)
    #expect(
      message
        == "the proxy \(proxy.url) ([broker] https_proxy) refused CONNECT 127.0.0.1:\(server.port): 407 Proxy Authentication Required; it refused the credentials of user broker: check [broker] https_proxy_user and https_proxy_password"
    )
    #expect(!message.contains("wrong-Zq81"))
    #expect(server.requests.isEmpty)
    await server.stop()
    await proxy.stop()
  }

  /// A proxy that offers only schemes the broker does not speak is told apart from one that
  /// wants the two keys set.
  @Test func aProxyThatAsksForNTLMOrNegotiateSaysTheBrokerDoesNotSpeakIt() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.behave(.askFor(schemes: ["Negotiate", "NTLM"]))
    var through = proxy.proxy
    through.credential = ProxyCredential(user: "broker", password: "pw")
    let (result, server) = try await Self.send(through: through)
    #expect(
      Self.message(result)
        == "the proxy \(proxy.url) ([broker] https_proxy) refused CONNECT 127.0.0.1:\(server.port): 407 Proxy Authentication Required; it asks for negotiate or ntlm authentication, which token-broker does not speak (Basic only): let the broker's host through without it"
    )
    proxy.behave(.askFor(schemes: ["Negotiate", "Basic realm=\"corp\""]))
    let (again, other) = try await Self.send(through: proxy.proxy)
    #expect(
      Self.message(again).hasSuffix(
        "it asks for credentials: set [broker] https_proxy_user and https_proxy_password"))
    await server.stop()
    await other.stop()
    await proxy.stop()
  }

  @Test func aProxyThatRefusesTheHostNamesNoProxy() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.behave(.refuse(status: 403, reason: "Forbidden"))
    let (result, server) = try await Self.send(through: proxy.proxy)
    #expect(
      Self.message(result)
        == "the proxy \(proxy.url) ([broker] https_proxy) refused CONNECT 127.0.0.1:\(server.port): 403 Forbidden; check that it lets this host reach 127.0.0.1:\(server.port), or list the host in [broker] no_proxy"
    )
    await server.stop()
    await proxy.stop()
  }

  @Test func somethingThatIsNotAnHTTPProxyIsNamed() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.behave(.garbage)
    let (result, server) = try await Self.send(through: proxy.proxy)
    #expect(
      Self.message(result)
        == "the proxy \(proxy.url) ([broker] https_proxy) did not answer CONNECT 127.0.0.1:\(server.port) as an HTTP proxy does (an answer that is not HTTP/1.x); check the address"
    )
    await server.stop()
    await proxy.stop()
  }

  /// A proxy that closes every connection as it accepts it (full, or shutting down), reached
  /// by name: said as such whether it closed before or after the tunnel was asked for.
  @Test func aProxyThatClosesAtOnceIsNamed() async throws {
    let closing = try await ScriptedServer(greeting: [])
    let proxy = UpstreamProxy(host: "localhost", port: closing.port)
    for _ in 0..<100 {
      let (result, server) = try await Self.send(through: proxy)
      // Closed before CONNECT was read, or reset after it was written.
      let message = Self.message(result)
      #expect(
        message.hasPrefix(
          "the proxy \(proxy) ([broker] https_proxy) closed the connection before the tunnel to 127.0.0.1:\(server.port) was open"
        ), "\(message)")
      #expect(message.hasSuffix("was open") || message.hasSuffix("was open (Connection reset by peer)"))
      await server.stop()
    }
    await closing.stop()
  }

  @Test func aProxyThatNeverAnswersEndsAtTheDeadline() async throws {
    let proxy = try await ConnectProxy.start()
    proxy.behave(.silent)
    let (result, server) = try await Self.send(through: proxy.proxy, timeout: 0.5)
    #expect(
      Self.message(result)
        == "no complete answer within request_timeout (0.5 s) (through the proxy \(proxy.url))")
    await server.stop()
    await proxy.stop()
  }

  @Test func aProxyThatIsNotThereIsNamed() async throws {
    let proxy = try await ConnectProxy.start()
    let gone = proxy.proxy
    await proxy.stop()
    let (result, server) = try await Self.send(through: gone)
    #expect(
      Self.message(result) == "cannot reach the proxy \(gone) ([broker] https_proxy): Connection refused")
    await server.stop()
  }

  static func message(_ result: Result<UpstreamResponse, UpstreamFailure>) -> String {
    switch result {
    case .success(let r): return "answered \(r.status)"
    case .failure(let f): return f.message
    }
  }
}

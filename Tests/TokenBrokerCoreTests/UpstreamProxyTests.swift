import Testing

@testable import TokenBrokerCore

/// `[broker] https_proxy` and `no_proxy`: what is accepted, what is refused with what to write
/// instead, and which endpoints go through the proxy (README "Proxy").
@Suite struct UpstreamProxyTests {
  static func parsed(_ text: String) -> String {
    switch UpstreamProxy.parse(text) {
    case .success(let proxy): return proxy.description
    case .failure(let problem): return problem.message
    }
  }

  @Test func aProxyIsAnHTTPURLWithAPort() {
    #expect(Self.parsed("http://proxy.example.com:3128") == "http://proxy.example.com:3128")
    #expect(Self.parsed("HTTP://Proxy.Example.com:3128/") == "http://proxy.example.com:3128")
    #expect(Self.parsed("http://10.0.0.1:8080") == "http://10.0.0.1:8080")
    #expect(Self.parsed("http://[2001:db8::1]:3128") == "http://[2001:db8::1]:3128")
    #expect(UpstreamProxy(host: "[2001:db8::1]", port: 3128).connectHost == "2001:db8::1")
  }

  @Test func anythingElseSaysWhatToWrite() {
    let shape = "must be the proxy's URL like \"http://proxy.example.com:3128\""
    #expect(Self.parsed("proxy.example.com:3128") == "\(shape), found \"proxy.example.com:3128\"")
    #expect(Self.parsed("http://proxy.example.com") == "\(shape): it names no port")
    #expect(Self.parsed("http://proxy.example.com:3128/squid") == "\(shape): no path, query or fragment")
    #expect(
      Self.parsed("http://user:pw@proxy.example.com:3128")
        == "must not hold credentials (user@host): proxies that ask for a password are not supported")
    #expect(
      Self.parsed("https://proxy.example.com:3128")
        == "scheme \"https\" is not supported: the proxy is spoken to in plain HTTP (CONNECT; the token endpoint's TLS runs inside the tunnel); \(shape)"
    )
    #expect(
      Self.parsed("http://proxy.example.com:99999").contains("the port must be a number from 1 to 65535"))
  }

  @Test func loopbackAndNoProxyHostsAreReachedDirectly() {
    var settings = BrokerSettings()
    let proxy = UpstreamProxy(host: "proxy.example.com", port: 3128)
    #expect(settings.proxy(for: "https://auth.example.com/token") == nil)  // no https_proxy
    settings.httpsProxy = proxy
    settings.noProxy = ["internal.example", ".corp.example", "10.1.2.3", "[2001:db8::5]"]
    #expect(settings.proxy(for: "https://auth.example.com/token") == proxy)
    #expect(settings.proxy(for: "https://internal.example/token") == nil)
    #expect(settings.proxy(for: "https://auth.internal.example:8443/token") == nil)
    #expect(settings.proxy(for: "https://corp.example/token") == nil)
    #expect(settings.proxy(for: "https://sso.corp.example/token") == nil)
    #expect(settings.proxy(for: "https://notcorp.example/token") == proxy)
    #expect(settings.proxy(for: "https://10.1.2.3/token") == nil)
    #expect(settings.proxy(for: "https://10.1.2.30/token") == proxy)
    #expect(settings.proxy(for: "https://[2001:db8::5]/token") == nil)
    #expect(settings.proxy(for: "http://127.0.0.1:8080/token") == nil)
    #expect(settings.proxy(for: "http://localhost:8080/token") == nil)
    #expect(settings.proxy(for: "https://[::1]/token") == nil)
    #expect(settings.proxy(for: "https://AUTH.Internal.Example/token") == nil)
  }

  static func problems(_ broker: String) -> [String] {
    let text = "[broker]\n\(broker)\n"
    do {
      _ = try ConfigParser.parse(text, path: "broker.toml", fileMode: 0o600)
      return []
    } catch {
      return error.problems.map { "\($0.line): \($0.message)" }
    }
  }

  @Test func theConfigTakesAProxyAndItsExceptions() throws {
    let text = """
      [broker]
      https_proxy = "http://proxy.example.com:3128"
      no_proxy = ["internal.example", ".corp.example"]
      """
    let config = try ConfigParser.parse(text, path: "broker.toml", fileMode: 0o600)
    #expect(config.broker.httpsProxy == UpstreamProxy(host: "proxy.example.com", port: 3128))
    #expect(config.broker.noProxy == ["internal.example", ".corp.example"])
    #expect(
      Self.problems(#"https_proxy = "proxy:3128""#) == [
        #"2: broker.https_proxy: must be the proxy's URL like "http://proxy.example.com:3128", found "proxy:3128""#
      ])
    #expect(
      Self.problems(#"no_proxy = ["ok.example", "*.example.com", "http://x.example", 5]"#) == [
        "2: broker.no_proxy: entry 4: expected a host name, found an integer",
        #"2: broker.no_proxy: entry 2: "*.example.com" is not a host name, domain or IP address (no scheme, port, path or wildcard)"#,
        #"2: broker.no_proxy: entry 3: "http://x.example" is not a host name, domain or IP address (no scheme, port, path or wildcard)"#,
      ])
  }

  @Test func aProxysAnswerToConnect() {
    func parse(_ text: String) -> ProxyAnswer { ProxyAnswer.parse(Array(text.utf8)) }
    #expect(parse("HTTP/1.1 200 Connection established\r\n\r\n") == .open)
    #expect(parse("HTTP/1.0 200 OK\r\nProxy-Agent: squid\r\n\r\n") == .open)
    #expect(parse("HTTP/1.1 200 Connection established\r\n") == .incomplete)
    #expect(parse("") == .incomplete)
    #expect(
      parse("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        == .refused(status: 407, reason: "Proxy Authentication Required"))
    #expect(parse("HTTP/1.1 403 Forbidden\r\n\r\n<html>") == .refused(status: 403, reason: "Forbidden"))
    #expect(parse("HTTP/1.1 502\r\n\r\n") == .refused(status: 502, reason: ""))
    #expect(
      parse("HTTP/1.1 403 \u{1B}[31mred\u{7F} " + String(repeating: "x", count: 100) + "\r\n\r\n")
        == .refused(status: 403, reason: "[31mred " + String(repeating: "x", count: 72)))
    #expect(parse("SSH-2.0-OpenSSH_9.2\r\n\r\n") == .malformed("an answer that is not HTTP/1.x"))
    #expect(parse("HTTP/1.1 2000 OK\r\n\r\n") == .malformed("an answer that is not HTTP/1.x"))
    #expect(parse("HTTP/1.1 099 Low\r\n\r\n") == .malformed("an answer that is not HTTP/1.x"))
    #expect(
      parse("HTTP/1.1 200 OK\r\n\r\n\u{16}")
        == .malformed("bytes after its answer, before the endpoint's TLS"))
    #expect(
      ProxyAnswer.parse([UInt8](repeating: 0x41, count: ProxyAnswer.maxHeadBytes + 1))
        == .malformed("an answer head over 16 KiB"))
  }
}

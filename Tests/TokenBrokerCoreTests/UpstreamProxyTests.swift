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
        == "must not hold credentials (user@host): set https_proxy_user and https_proxy_password instead")
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

  /// `https_proxy_user` and `https_proxy_password`: both or neither, only with `https_proxy`,
  /// and a user name Basic authentication can carry.
  @Test func aProxyCredentialIsBothKeysWithAProxy() throws {
    let proxy = #"https_proxy = "http://proxy.example.com:3128""#
    let text = """
      [broker]
      \(proxy)
      https_proxy_user = "broker"
      https_proxy_password = { credential = "proxy-password" }
      """
    let config = try ConfigParser.parse(text, path: "broker.toml", fileMode: 0o600)
    #expect(config.broker.httpsProxyUser == "broker")
    #expect(config.broker.httpsProxyPassword == .credential("proxy-password"))
    #expect(config.broker.httpsProxy?.credential == nil)  // the loader reads the password
    #expect(
      Self.problems(#"https_proxy_user = "broker""#) == [
        "2: broker.https_proxy_user: has no effect without https_proxy; set https_proxy or remove https_proxy_user"
      ])
    #expect(
      Self.problems("\(proxy)\nhttps_proxy_password = { file = \"/etc/p\" }") == [
        "3: broker.https_proxy_password: needs https_proxy_user too (the proxy is sent both, as Basic authentication)"
      ])
    #expect(
      Self.problems("\(proxy)\nhttps_proxy_user = \"a:b\"\nhttps_proxy_password = { file = \"/etc/p\" }") == [
        "3: broker.https_proxy_user: must not contain ':' (Basic authentication separates the password with it)"
      ])
    #expect(
      Self.problems("\(proxy)\nhttps_proxy_user = \"a b\"\nhttps_proxy_password = { file = \"/etc/p\" }") == [
        "3: broker.https_proxy_user: must not contain a space or a control character"
      ])
  }

  /// The credential's header value, and nothing that prints it shows the password.
  @Test func aProxyCredentialIsSentAsBasicAndNeverShown() {
    let credential = ProxyCredential(user: "broker", password: "pw-Zq81 x")
    #expect(credential.authorization == "Basic YnJva2VyOnB3LVpxODEgeA==")
    let proxy = UpstreamProxy(host: "proxy.example.com", port: 3128, credential: credential)
    var dumped = ""
    dump(proxy, to: &dumped)
    for shown in [
      "\(proxy)", "\(credential)", String(reflecting: credential), dumped,
      String(describing: Optional(proxy)),
    ] {
      #expect(!shown.contains("pw-Zq81"), "\(shown)")
    }
    #expect("\(proxy)" == "http://proxy.example.com:3128")
    // A changed password is a changed proxy: a reload takes it.
    var changed = proxy
    changed.credential?.password = "other"
    #expect(changed != proxy)
  }

  @Test func aProxyPasswordIsOneLine() {
    #expect(ProxyCredential.checkPassword("s3cret\n") == .success("s3cret"))
    #expect(ProxyCredential.checkPassword("s3cret\r\n") == .success("s3cret"))
    #expect(ProxyCredential.checkPassword("with space") == .success("with space"))
    let refused = ProxyCredential.PasswordRefused(
      why: "holds a line break or a control character; write it on one line")
    #expect(ProxyCredential.checkPassword("one\ntwo\n") == .failure(refused))
    #expect(ProxyCredential.checkPassword("tab\there") == .failure(refused))
    #expect(ProxyCredential.checkPassword("\n") == .failure(.init(why: "is empty")))
  }

  /// The schemes a 407 offers: one field each, or several challenges in one field, never a
  /// parameter's name or a quoted value taken for one.
  @Test func theSchemesAProxyAsksFor() {
    func schemes(_ fields: String) -> [String] {
      ProxyAnswer.authenticationSchemes(
        Array("HTTP/1.1 407 Proxy Authentication Required\r\n\(fields)Content-Length: 0\r\n\r\n".utf8))
    }
    #expect(
      schemes("Proxy-Authenticate: Negotiate\r\nProxy-Authenticate: NTLM\r\n") == ["negotiate", "ntlm"])
    #expect(schemes("proxy-authenticate: Basic realm=\"Squid, proxy\"\r\n") == ["basic"])
    #expect(
      schemes("Proxy-Authenticate: Basic realm=\"a, Negotiate\", charset=\"UTF-8\", Negotiate abc123==\r\n")
        == ["basic", "negotiate"])
    #expect(schemes("Proxy-Authenticate: NTLM\r\nProxy-Authenticate: ntlm\r\n") == ["ntlm"])
    #expect(schemes("WWW-Authenticate: Basic\r\n") == [])
    #expect(schemes("Proxy-Authenticate: \u{1B}[31m\r\n") == [])
    #expect(
      ProxyAnswer.authenticationSchemes(Array("HTTP/1.1 407 No\r\nProxy-Authenticate: Basic\r\n".utf8)) == [])
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

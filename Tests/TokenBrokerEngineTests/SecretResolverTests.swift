import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// API keys are served verbatim as a header line: anything but visible ASCII is refused at
/// load (security review L12), with the provider and the source named and the value never.
@Suite struct SecretResolverTests {
  func provider(_ source: SecretSource) -> ProviderConfig {
    var p = ProviderConfig(name: "keys", tokenURL: "", grant: .apiKey)
    p.apiKey = source
    return p
  }

  func writeSecret(_ bytes: String) throws -> String {
    let path = try TempDirectory.make("tb-secret") + "/api-key"
    let created = FileManager.default.createFile(
      atPath: path, contents: Data(bytes.utf8), attributes: [.posixPermissions: 0o600])
    #expect(created)
    return path
  }

  @Test func aKeyFileWithASecondLineIsRefused() throws {
    let path = try writeSecret("ak_live_7f3a9c1e\nX-Injected: yes\n")
    let (secrets, problems) = SecretResolver(environment: [:]).resolve(provider: provider(.file(path)))
    #expect(secrets.apiKey == nil)
    #expect(problems.count == 1)
    let problem = try #require(problems.first)
    #expect(problem.key == "api_key")
    #expect(
      problem.message
        == "file \(path) holds a line break (LF) at byte 17: an API key is served as a header line "
        + "and must be visible ASCII; keep only the key in it")
    #expect(!problem.message.contains("ak_live"))
    #expect(!problem.message.contains("Injected"))
  }

  @Test(arguments: [
    "ak_live\r\nnote", "ak\rlive", "ak\u{0}live", "ak\u{1B}[31mlive", "ak_live\tx", "ak_live\u{7F}",
    "ak_lïve",
  ])
  func controlBytesAndNonASCIIAreRefusedFromEverySource(value: String) throws {
    let resolver = SecretResolver(environment: ["KEYS_API_KEY": value])
    for source in [SecretSource.env("KEYS_API_KEY"), .literal(value)] {
      let (secrets, problems) = resolver.resolve(provider: provider(source))
      #expect(secrets.apiKey == nil, "\(source)")
      #expect(problems.map(\.key) == ["api_key"], "\(source)")
      #expect(problems.first?.message.contains("\(source) holds ") == true, "\(problems)")
      #expect(problems.first?.message.contains(value) == false)
    }
  }

  @Test func oneTrailingNewlineIsDroppedAndSpacesAreKept() throws {
    let resolver = SecretResolver(environment: ["A": "ak_live_1\n", "B": "Token ak_live_2\r\n"])
    #expect(resolver.resolve(provider: provider(.env("A"))).0.apiKey == "ak_live_1")
    #expect(resolver.resolve(provider: provider(.env("B"))).0.apiKey == "Token ak_live_2")
    let path = try writeSecret("ak_live_3\n")
    let (secrets, problems) = resolver.resolve(provider: provider(.file(path)))
    #expect(problems.isEmpty)
    #expect(secrets.apiKey == "ak_live_3")
    let twoNewlines = resolver.resolve(provider: provider(.literal("ak_live_4\n\n")))
    #expect(twoNewlines.0.apiKey == nil)
    #expect(twoNewlines.1.first?.message.contains("line break (LF) at byte 10") == true)
  }

  /// `[broker] https_proxy_password` is read like every secret and put into the proxy with
  /// its user; a password that cannot go into a header line is refused, never quoted.
  @Test func theProxyPasswordIsReadIntoTheProxysCredential() throws {
    let dir = try TempDirectory.make("tb-proxy")
    let config = dir + "/broker.toml"
    let good = try writeSecret("pw-Zq81 x\n")
    func load(password path: String) throws(ConfigError) -> LoadedConfig {
      let text = """
        [broker]
        https_proxy = "http://proxy.example.com:3128"
        https_proxy_user = "broker"
        https_proxy_password = { file = "\(path)" }
        """
      _ = FileManager.default.createFile(
        atPath: config, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
      return try ConfigLoader(path: config, resolver: SecretResolver(environment: [:])).load()
    }
    let loaded = try load(password: good)
    #expect(
      loaded.config.broker.httpsProxy
        == UpstreamProxy(
          host: "proxy.example.com", port: 3128,
          credential: ProxyCredential(user: "broker", password: "pw-Zq81 x")))
    let twoLines = try writeSecret("pw-Zq81\nX-Injected: yes\n")
    do {
      _ = try load(password: twoLines)
      Issue.record("a password of two lines was taken")
    } catch {
      #expect(
        error.problems.map { "\($0.line): \($0.message)" } == [
          "4: broker.https_proxy_password: file \(twoLines) holds a line break or a control character; write it on one line"
        ])
    }
  }
}

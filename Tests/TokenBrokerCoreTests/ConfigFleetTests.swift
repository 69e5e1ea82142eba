import Foundation
import Testing

@testable import TokenBrokerCore

/// `[fleet]` and a provider's `fleet = false` (README "Fleet").
@Suite struct ConfigFleetTests {
  func parse(_ text: String) throws(ConfigError) -> BrokerConfig { try ConfigText.parse(text) }
  func problems(_ text: String) -> [String] { ConfigText.problems(text) }

  static let providers = """
    [providers.cc]
    token_url = "https://auth.example/token"
    grant = "client_credentials"
    client_id = "cid"
    client_secret = { file = "/etc/token-broker/secrets/cc" }

    [providers.local]
    token_url = "https://auth.example/token"
    grant = "client_credentials"
    client_id = "cid"
    client_secret = { file = "/etc/token-broker/secrets/cc" }
    fleet = false

    [providers.key]
    grant = "api_key"
    api_key = { file = "/etc/token-broker/secrets/key" }

    """

  @Test func everyKeyIsRead() throws {
    let config = try parse(
      Self.providers + """
        [fleet]
        store = { file = "/etc/token-broker/fleet-dsn" }
        key = { credential = "fleet-key" }
        node = "web-1"
        name = "site.a"
        lease = 45

        """)
    let fleet = try #require(config.fleet)
    #expect(fleet.store == .file("/etc/token-broker/fleet-dsn"))
    #expect(fleet.key == .credential("fleet-key"))
    #expect(fleet.node == "web-1")
    #expect(fleet.name == "site.a")
    #expect(fleet.lease == 45)
    #expect(config.sharesWithFleet(config.provider(named: "cc")!))
    #expect(!config.sharesWithFleet(config.provider(named: "local")!))
    // an api key has nothing to refresh
    #expect(!config.sharesWithFleet(config.provider(named: "key")!))
  }

  @Test func defaults() throws {
    let config = try parse(
      """
      [broker]
      request_timeout = 20
      [fleet]
      store = { env = "FLEET_DSN" }
      key = { env = "FLEET_KEY" }
      """)
    let fleet = try #require(config.fleet)
    #expect(fleet.node == nil)
    #expect(fleet.name == "default")
    // at least three request timeouts
    #expect(fleet.lease == 60)
  }

  @Test func withoutAFleetNothingIsShared() throws {
    let config = try parse(Self.providers)
    #expect(config.fleet == nil)
    #expect(!config.sharesWithFleet(config.provider(named: "cc")!))
  }

  @Test func missingSecretsSayHowToMakeThem() {
    let found = problems("[fleet]\nnode = \"a\"\n")
    #expect(found.count == 2)
    #expect(
      found.contains { $0.hasPrefix("1: fleet.store: missing") && $0.contains("postgresql://") }, "\(found)")
    #expect(
      found.contains { $0.contains("fleet.key: missing") && $0.contains("head -c 32 /dev/urandom | base64") })
  }

  @Test(arguments: [
    (
      "lease = 2",
      "fleet.lease: must be between 30 (3 × [broker] request_timeout, at least 5) and 3600 seconds, found 2"
    ),
    ("lease = 4000", "found 4000"),
    ("node = \"web 1\"", "fleet.node: use 1 to 64 characters"),
    ("name = \"\"", "fleet.name"),
    ("leese = 3", "fleet.leese: unknown key; did you mean 'lease'?"),
    ("key = \"c2VjcmV0\"\nstore = \"x\"", "defined twice"),
  ])
  func badValuesAreRefusedWithWhatToDo(line: String, says: String) {
    let text = "[fleet]\nstore = { file = \"/etc/dsn\" }\nkey = { file = \"/etc/key\" }\n\(line)\n"
    let found = problems(text)
    #expect(found.contains { $0.contains(says) }, "\(found)")
  }

  @Test func fleetInAProviderIsABoolean() {
    let text = Self.providers.replacingOccurrences(of: "fleet = false", with: "fleet = \"no\"")
    #expect(
      problems(text).contains { $0.contains("providers.local.fleet: expected true or false, found a string") }
    )
    let onKey = Self.providers + "fleet = true\n"
    #expect(problems(onKey).contains { $0.contains("providers.key.fleet: not used by grant \"api_key\"") })
  }

  @Test(arguments: [
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", nil as String?),
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", nil),
    ("AAECAwQF", "the key is 6 bytes, AES-256 needs 32"),
    ("not base64!", "not base64"),
  ])
  func theKeyIsThirtyTwoBytesOfBase64(text: String, problem: String?) {
    switch FleetSecrets.decodeKey(text) {
    case .success(let key):
      #expect(problem == nil)
      #expect(key == Array(0..<32))
    case .failure(let why):
      #expect(why.description.contains(problem ?? "-"), "\(why)")
      #expect(why.description.contains("head -c 32 /dev/urandom | base64"))
    }
  }

  @Test func secretsAreNeverShown() {
    let secrets = FleetSecrets(store: "postgresql://u:hunter2@db/x", key: Array(repeating: 7, count: 32))
    #expect(!"\(secrets)".contains("hunter2"))
  }
}

@testable import TokenBrokerCore

/// A configuration given as text, parsed as `broker.toml` with no file mode: the config
/// suites' one way to read one, and to list what is wrong with it as `LINE: message`.
enum ConfigText {
  static func parse(_ text: String) throws(ConfigError) -> BrokerConfig {
    try ConfigParser.parse(text, path: "broker.toml", fileMode: nil)
  }

  static func problems(_ text: String) -> [String] {
    do {
      _ = try parse(text)
      return []
    } catch {
      return error.problems.map { "\($0.line): \($0.message)" }
    }
  }
}

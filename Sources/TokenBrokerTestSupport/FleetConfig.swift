import Foundation

/// What a broker of a test fleet needs (README "Fleet"), for the system tests and the bench:
/// a rotating refresh-token provider, the `[fleet]` table, and the store and key files.
package enum FleetConfig {
  /// `[providers.pv]`: the refresh_token grant against `upstream` (powerverse dialect, JSON
  /// body, public client), seeded with `seed` (register it with `upstream.seedRefreshToken`).
  package static func rotatingProvider(_ upstream: FakeUpstream, seed: String) -> String {
    """
    [providers.pv]
    token_url = "\(upstream.tokenURL)"
    grant = "refresh_token"
    client_auth = "none"
    body = "json"
    client_id = "\(upstream.settings.clientID)"
    refresh_token = "\(seed)"

    """
  }

  /// `[fleet]` with the store and key files; `name` and `lease` only when given.
  package static func table(
    dsnFile: String, keyFile: String, node: String, name: String? = nil, lease: Int? = nil
  ) -> String {
    var lines = [
      "[fleet]", "store = { file = \"\(dsnFile)\" }", "key = { file = \"\(keyFile)\" }", "node = \"\(node)\"",
    ]
    if let name { lines.append("name = \"\(name)\"") }
    if let lease { lines.append("lease = \(lease)") }
    return lines.joined(separator: "\n") + "\n\n"
  }

  /// Writes the connection string and a random 32-byte key (base64) into `dir`, mode 0600;
  /// their paths.
  package static func writeSecrets(dsn: String, in dir: TempDirectory) throws -> (dsn: String, key: String) {
    var generator = SystemRandomNumberGenerator()
    let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    return (
      try dir.write("fleet-dsn", dsn + "\n"),
      try dir.write("fleet-key", Data(key).base64EncodedString() + "\n")
    )
  }
}

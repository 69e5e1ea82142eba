/// `[fleet]` (README "Fleet"): brokers that share one token per (provider, scope set) through
/// a PostgreSQL database. Absent: every provider is local, as without a fleet.
package struct FleetSettings: Sendable, Equatable {
  /// The connection string, a secret: `postgresql://USER:PASS@HOST:PORT/DB?sslmode=...`.
  package var store: SecretSource
  /// 32 random bytes, base64: the AES-256-GCM key every broker of the fleet shares.
  package var key: SecretSource
  /// This broker's name in the fleet (claims and status say who holds a token); default the
  /// host name.
  package var node: String?
  /// The fleet's name: two fleets on one database never see each other's rows.
  package var name: String = "default"
  /// Seconds a refresher's claim on a token lasts (the database's clock).
  package var lease: Double = 30

  package init(store: SecretSource, key: SecretSource) {
    self.store = store
    self.key = key
  }
}

/// The fleet's secrets, resolved: never shown.
package struct FleetSecrets: Sendable, Equatable, CustomStringConvertible {
  /// The database's connection string (it may hold a password).
  package var store: String
  /// The 32-byte AES-256-GCM key.
  package var key: [UInt8]

  package init(store: String, key: [UInt8]) {
    self.store = store
    self.key = key
  }

  package var description: String { "FleetSecrets(store: <redacted>, key: <redacted>)" }

  /// `[fleet] key` as written (base64 of 32 bytes, surrounding blanks ignored), or why not.
  package static func decodeKey(_ text: String) -> Result<[UInt8], KeyProblem> {
    let trimmed = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined()
    guard let bytes = Base64.decodeURL(trimmed) else { return .failure(.notBase64) }
    guard bytes.count == 32 else { return .failure(.wrongLength(bytes.count)) }
    return .success(bytes)
  }

  package enum KeyProblem: Error, Sendable, Equatable, CustomStringConvertible {
    case notBase64
    case wrongLength(Int)

    package var description: String {
      let make = "make one with: head -c 32 /dev/urandom | base64"
      switch self {
      case .notBase64: return "the key is not base64; \(make)"
      case .wrongLength(let n): return "the key is \(n) bytes, AES-256 needs 32; \(make)"
      }
    }
  }
}

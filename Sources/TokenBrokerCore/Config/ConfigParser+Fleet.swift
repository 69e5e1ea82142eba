import TokenBrokerTOML

/// `[fleet]`.
extension ConfigReader {
  static let fleetKeys = ["store", "key", "node", "name", "lease"]

  mutating func parseFleet(_ table: TOMLTable, requestTimeout: Double) -> FleetSettings? {
    let base = ["fleet"]
    checkKeys(table, at: base, known: Self.fleetKeys)
    var store: SecretSource?
    if let value = table["store"] {
      store = secret(value, at: base + ["store"])
    } else {
      report(
        base + ["store"],
        "missing; set store = { file = \"/etc/token-broker/fleet-dsn\" } (a postgresql:// connection string)")
    }
    var key: SecretSource?
    if let value = table["key"] {
      key = secret(value, at: base + ["key"])
    } else {
      report(
        base + ["key"],
        "missing; set key = { credential = \"fleet-key\" } (32 random bytes in base64: head -c 32 /dev/urandom | base64)"
      )
    }
    guard let store, let key else { return nil }
    var fleet = FleetSettings(store: store, key: key)
    if let value = table["node"], let node = string(value, at: base + ["node"]) {
      if Self.isFleetName(node) {
        fleet.node = node
      } else {
        report(base + ["node"], "use 1 to 64 characters of a-z, A-Z, 0-9, '.', '_' and '-'")
      }
    }
    if let value = table["name"], let name = string(value, at: base + ["name"]) {
      if Self.isFleetName(name) {
        fleet.name = name
      } else {
        report(base + ["name"], "use 1 to 64 characters of a-z, A-Z, 0-9, '.', '_' and '-'")
      }
    }
    if let value = table["lease"], let n = number(value, at: base + ["lease"]) {
      // A claim must outlast the request it covers, with room for the commit.
      let least = max(5, 3 * requestTimeout)
      if n >= least, n <= 3600 {
        fleet.lease = n
      } else {
        report(
          base + ["lease"],
          "must be between \(Self.format(least)) (3 × [broker] request_timeout, at least 5) and 3600 seconds, found \(Self.format(n))"
        )
      }
    } else if fleet.lease < 3 * requestTimeout {
      fleet.lease = 3 * requestTimeout
    }
    return fleet
  }

  static func isFleetName(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard (1...64).contains(bytes.count) else { return false }
    return bytes.allSatisfy { b in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b)
        || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: ".")
        || b == UInt8(ascii: "_")
        || b == UInt8(ascii: "-")
    }
  }
}

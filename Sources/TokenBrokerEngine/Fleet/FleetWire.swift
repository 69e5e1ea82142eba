import TokenBrokerCore

/// The line protocol between the daemon and its fleet helper (`token-broker-fleet`, README
/// "Fleet"): one JSON object per line over a socket pair of the two processes. The helper
/// holds the database connections (its driver needs Foundation, which the daemon does not
/// link); the daemon asks it `read`, `claim`, `commit`, `release`, `seed`, `forget` and is
/// told of changes. The first line the daemon sends is the setup (connection string, key,
/// fleet, node): secrets go over the socket pair, never in arguments or the environment.
package enum FleetWire {
  package struct Setup: Sendable, Equatable, CustomStringConvertible {
    package var store: String
    package var key: [UInt8]
    package var fleet: String
    package var node: String
    package var logLevel: String

    package init(store: String, key: [UInt8], fleet: String, node: String, logLevel: String) {
      self.store = store
      self.key = key
      self.fleet = fleet
      self.node = node
      self.logLevel = logLevel
    }

    package var description: String {
      "Setup(fleet: \(fleet), node: \(node), store: <redacted>, key: <redacted>)"
    }

    package var json: JSONValue {
      .object([
        ("store", .string(store)), ("key", .string(Base64.encode(key))), ("fleet", .string(fleet)),
        ("node", .string(node)), ("log_level", .string(logLevel)),
      ])
    }

    package init?(_ v: JSONValue) {
      guard let store = v["store"]?.string, let key = v["key"]?.string.flatMap(Base64.decodeURL),
        let fleet = v["fleet"]?.string, let node = v["node"]?.string
      else { return nil }
      self.init(store: store, key: key, fleet: fleet, node: node, logLevel: v["log_level"]?.string ?? "info")
    }
  }

  // MARK: Values

  package static func json(_ k: FleetKey) -> JSONValue {
    .object([
      ("provider", .string(k.provider)), ("scopes", .string(k.scopes)), ("identity", .string(k.identity)),
    ])
  }

  package static func key(_ v: JSONValue?) -> FleetKey? {
    guard let v, let p = v["provider"]?.string, let s = v["scopes"]?.string, let i = v["identity"]?.string
    else {
      return nil
    }
    return FleetKey(provider: p, scopes: s, identity: i)
  }

  package static func json(_ t: FleetTokens) -> JSONValue {
    .object([
      ("access_token", .string(t.token.accessToken)), ("token_type", .string(t.token.tokenType)),
      ("issued_at", .number(t.token.issuedAt)),
      ("expires_at", t.token.expiresAt.map { .number($0) } ?? .null),
      ("scope", .array(t.token.scope.map { .string($0) })),
      ("refresh_token", t.refreshToken.map { .string($0) } ?? .null),
    ])
  }

  package static func tokens(_ v: JSONValue?) -> FleetTokens? {
    guard let v, let at = v["access_token"]?.string, let type = v["token_type"]?.string,
      let issued = v["issued_at"]?.number, let scope = v["scope"]?.array
    else { return nil }
    let token = Token(
      accessToken: at, tokenType: type, issuedAt: issued, expiresAt: v["expires_at"]?.number,
      scope: scope.compactMap(\.string))
    return FleetTokens(token: token, refreshToken: v["refresh_token"]?.string)
  }

  package static func json(_ r: FleetRow) -> JSONValue {
    .object([
      ("key", json(r.key)), ("version", .number(Double(r.version))), ("epoch", .number(Double(r.epoch))),
      ("seed", r.seed.map { .string($0) } ?? .null), ("tokens", r.tokens.map { json($0) } ?? .null),
      ("holder", r.holder.map { .string($0) } ?? .null),
      ("claim_remaining", r.claimRemaining.map { .number($0) } ?? .null),
      ("refresher", r.refresher.map { .string($0) } ?? .null),
    ])
  }

  package static func row(_ v: JSONValue?) -> FleetRow? {
    guard let v, let key = key(v["key"]), let version = v["version"]?.number, let epoch = v["epoch"]?.number
    else { return nil }
    return FleetRow(
      key: key, version: Int64(version), epoch: Int64(epoch), seed: v["seed"]?.string,
      tokens: tokens(v["tokens"]),
      holder: v["holder"]?.string, claimRemaining: v["claim_remaining"]?.number,
      refresher: v["refresher"]?.string)
  }

  package static func json(_ c: FleetClaim) -> JSONValue {
    .object([("row", json(c.row)), ("lease", .number(c.lease))])
  }

  package static func claim(_ v: JSONValue?) -> FleetClaim? {
    guard let v, let row = row(v["row"]), let lease = v["lease"]?.number else { return nil }
    return FleetClaim(row: row, lease: lease)
  }

  package static func json(_ e: FleetStoreError) -> JSONValue {
    let code: String
    switch e.code {
    case .unreachable: code = "unreachable"
    case .keyMismatch: code = "key_mismatch"
    case .tampered: code = "tampered"
    case .refused: code = "refused"
    }
    return .object([("code", .string(code)), ("message", .string(e.message))])
  }

  package static func error(_ v: JSONValue?) -> FleetStoreError {
    let codes: [String: FleetStoreError.Code] = [
      "unreachable": .unreachable, "key_mismatch": .keyMismatch, "tampered": .tampered, "refused": .refused,
    ]
    return FleetStoreError(
      v?["code"]?.string.flatMap { codes[$0] } ?? .unreachable,
      v?["message"]?.string ?? "the fleet helper answered with an error it did not describe")
  }

  package static func json(_ c: FleetChange) -> JSONValue {
    switch c {
    case .row(let id, let version):
      return .object([("event", .string("row")), ("id", .string(id)), ("version", .number(Double(version)))])
    case .resubscribed:
      return .object([("event", .string("resubscribed"))])
    }
  }

  package static func change(_ v: JSONValue) -> FleetChange? {
    switch v["event"]?.string {
    case "row":
      guard let id = v["id"]?.string, let version = v["version"]?.number else { return nil }
      return .row(id: id, version: Int64(version))
    case "resubscribed": return .resubscribed
    default: return nil
    }
  }

  /// One line: the value's JSON and a newline (JSON strings escape every newline).
  package static func line(_ v: JSONValue) -> [UInt8] { JSONWriter.encode(v) + [0x0A] }
}

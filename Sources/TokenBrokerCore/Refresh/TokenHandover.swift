/// The tokens one run of the daemon hands to the next across a restart or an upgrade
/// (README "Restarts and upgrades"): each still-valid token with the provider, the
/// credential identity it was issued to and its scope set. Pure encoding; the daemon keeps
/// the bytes in systemd's file-descriptor store (a sealed memfd), never on disk.
///
/// A token is taken over only by a provider of the same name whose credential identity is
/// unchanged (`token_url`, `client_id`, `username`, grant, seed refresh token, api key), so an
/// edited configuration never serves a token issued to another credential.
package struct TokenHandover: Sendable, Equatable, CustomStringConvertible {
  package struct Entry: Sendable, Equatable {
    package var provider: String
    package var identity: CredentialIdentity
    package var scopes: ScopeSet
    package var token: Token

    package init(provider: String, identity: CredentialIdentity, scopes: ScopeSet, token: Token) {
      self.provider = provider
      self.identity = identity
      self.scopes = scopes
      self.token = token
    }
  }

  /// Why bytes could not be read as a handover; never quotes them (they hold tokens).
  package struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
  }

  package static let format = 1
  /// The largest handover read: 32 scope sets of every provider fit many times over.
  package static let maxBytes = 4 << 20

  package var entries: [Entry]

  package init(entries: [Entry]) { self.entries = entries }

  package var description: String { "TokenHandover(\(entries.count) tokens)" }

  /// The tokens of `provider` issued to `identity`, by scope set.
  package func tokens(provider: String, identity: CredentialIdentity) -> [ScopeSet: Token] {
    var out: [ScopeSet: Token] = [:]
    for e in entries where e.provider == provider && e.identity == identity { out[e.scopes] = e.token }
    return out
  }

  package func encoded() -> [UInt8] {
    let list: [JSONValue] = entries.map { e in
      var members: [(String, JSONValue)] = [
        ("provider", .string(e.provider)),
        ("identity", .string(e.identity.fingerprint)),
        ("scopes", .array(e.scopes.scopes.map { .string($0) })),
        ("access_token", .string(e.token.accessToken)),
        ("token_type", .string(e.token.tokenType)),
        ("issued_at", .number(e.token.issuedAt)),
        ("expires_at", e.token.expiresAt.map { .number($0) } ?? .null),
        ("scope", .array(e.token.scope.map { .string($0) })),
      ]
      if let seed = e.identity.seed { members.append(("seed", .string(seed))) }
      if let key = e.identity.key { members.append(("key", .string(key))) }
      return .object(members)
    }
    return JSONWriter.encode(.object([("format", .number(Double(Self.format))), ("tokens", .array(list))]))
  }

  /// Reads what `encoded()` wrote; a later format or a damaged handover is refused whole.
  package static func decode(_ bytes: [UInt8]) throws(Failure) -> TokenHandover {
    guard bytes.count <= maxBytes else {
      throw Failure(description: "the handover is larger than \(maxBytes) bytes")
    }
    guard let root = JSONValue.parse(bytes), root.object != nil else {
      throw Failure(description: "the handover is not JSON")
    }
    guard root["format"]?.number == Double(format) else {
      throw Failure(
        description:
          "the handover is of format \(root["format"]?.number.map { "\(Int($0))" } ?? "?"), not \(format)")
    }
    guard let list = root["tokens"]?.array else {
      throw Failure(description: "the handover holds no token list")
    }
    var entries: [Entry] = []
    for (i, item) in list.enumerated() {
      guard let provider = item["provider"]?.string, let fingerprint = item["identity"]?.string,
        let scopes = item["scopes"]?.array?.compactMap(\.string),
        let accessToken = item["access_token"]?.string,
        let tokenType = item["token_type"]?.string, let issuedAt = item["issued_at"]?.number,
        let scope = item["scope"]?.array?.compactMap(\.string)
      else { throw Failure(description: "token \(i + 1) of the handover is incomplete") }
      let expiresAt = item["expires_at"]?.number
      let identity = CredentialIdentity(
        fingerprint: fingerprint, seed: item["seed"]?.string, key: item["key"]?.string)
      let token = Token(
        accessToken: accessToken, tokenType: tokenType, issuedAt: issuedAt, expiresAt: expiresAt, scope: scope
      )
      entries.append(Entry(provider: provider, identity: identity, scopes: ScopeSet(scopes), token: token))
    }
    return TokenHandover(entries: entries)
  }
}

import TokenBrokerTOML

/// What a provider adds to its token request: scopes, params, headers.
extension ConfigReader {
  /// Headers the broker sets itself (compared case-insensitively).
  static let reservedHeaders = [
    "Authorization", "Content-Type", "Content-Length", "Host", "User-Agent", "X-Request-ID",
    "Transfer-Encoding",
    "Connection",
  ]

  /// Request parameters the broker sets itself, and the key that controls each.
  static let reservedParams: [(param: String, key: String)] = [
    ("grant_type", "grant"), ("client_id", "client_id"), ("client_secret", "client_secret"),
    ("username", "username"), ("password", "password"), ("refresh_token", "refresh_token"),
    ("scope", "scopes"),
  ]

  /// `scopes` and `allowed_scopes` (default: `scopes`); every scope must be allowed.
  mutating func parseScopes(
    _ table: TOMLTable, into provider: inout ProviderConfig, at base: [String], wanted: (String) -> Bool
  ) {
    var scopes: [(index: Int, scope: String)]?
    var allowed: [(index: Int, scope: String)]?
    if wanted("scopes"), let value = table["scopes"] {
      scopes = scopeList(value, at: base + ["scopes"])
    }
    if wanted("allowed_scopes"), let value = table["allowed_scopes"] {
      allowed = scopeList(value, at: base + ["allowed_scopes"])
    }
    provider.scopes = (scopes ?? []).map(\.scope)
    provider.allowedScopes = allowed?.map(\.scope) ?? provider.scopes
    guard let scopes, allowed != nil else { return }
    for (index, scope) in scopes where !provider.allowedScopes.contains(scope) {
      report(
        base + ["scopes"], line: lines.line(of: base + ["scopes"], element: index),
        "\(Self.quote(scope)) is not in allowed_scopes; add it there or remove it")
    }
  }

  /// The well-formed scopes of the list, with their positions; the others are reported.
  private mutating func scopeList(_ value: TOMLValue, at key: [String]) -> [(
    index: Int, scope: String
  )]? {
    guard
      let (elements, _) = stringElements(value, at: key, expected: "an array of strings", element: "a string")
    else { return nil }
    var good: [(index: Int, scope: String)] = []
    for (index, scope, line) in elements {
      guard !scope.isEmpty else {
        report(key, line: line, "entry \(index + 1): must not be empty")
        continue
      }
      let bad = scope.unicodeScalars.contains {
        $0.properties.isWhitespace || $0.value < 0x21 || $0.value == 0x7F || $0 == "\"" || $0 == "\\"
      }
      if bad {
        report(
          key, line: line,
          "entry \(index + 1): \(Self.quote(scope)) contains a space or a character a scope may not hold; "
            + "list each scope as its own string")
      } else {
        good.append((index, scope))
      }
    }
    return good
  }

  mutating func params(_ value: TOMLValue, at key: [String]) -> [String: String]? {
    guard let params = stringTable(value, at: key) else { return nil }
    for name in params.keys.sorted() {
      if name.isEmpty {
        report(key + [name], "a parameter name must not be empty")
      } else if let reserved = Self.reservedParams.first(where: { $0.param == name }) {
        report(key + [name], "set by the broker; use the provider's \(reserved.key) key instead")
      }
    }
    return params
  }

  mutating func headers(_ value: TOMLValue, at key: [String]) -> [String: String]? {
    guard let headers = stringTable(value, at: key) else { return nil }
    for name in headers.keys.sorted() {
      let entry = key + [name]
      if !Self.isHeaderToken(name) {
        report(entry, "not a valid HTTP header name")
      } else if let reserved = Self.reservedHeaders.first(where: { $0.lowercased() == name.lowercased() }) {
        report(
          entry,
          "\(reserved) is set by the broker and may not be configured "
            + "(reserved: \(Self.reservedHeaders.joined(separator: ", ")))")
      }
      if let text = headers[name],
        text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F })
      {
        report(entry, "a header value must not contain line breaks or control characters")
      }
    }
    return headers
  }

  /// An RFC 9110 token: the characters a header name may hold.
  static func isHeaderToken(_ name: String) -> Bool {
    !name.isEmpty
      && name.unicodeScalars.allSatisfy { s in
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
          || "!#$%&'*+-.^_`|~".unicodeScalars.contains(s)
      }
  }
}

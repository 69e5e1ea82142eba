/// The authorization request of the code flow (RFC 6749 section 4.1.1 with RFC 7636's
/// S256 challenge), as the URL the user opens in a browser.
package enum AuthorizationRequest {
  /// Parameters the broker sets itself; `authorize_params` may not override them.
  package static let reservedParams: Set<String> = [
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
    "nonce",
  ]

  package static func url(
    endpoint: String, clientID: String?, redirectURI: String, scopes: [String], state: String,
    challenge: String,
    nonce: String?, extra: [String: String]
  ) -> String {
    var fields: [(String, String)] = [("response_type", "code")]
    if let clientID { fields.append(("client_id", clientID)) }
    fields.append(("redirect_uri", redirectURI))
    if !scopes.isEmpty { fields.append(("scope", scopes.joined(separator: " "))) }
    fields += [("state", state), ("code_challenge", challenge), ("code_challenge_method", "S256")]
    if let nonce { fields.append(("nonce", nonce)) }
    for key in extra.keys.sorted() where !reservedParams.contains(key) { fields.append((key, extra[key]!)) }
    let query = TokenRequestBuilder.formEncode(fields)
    return endpoint + (endpoint.contains("?") ? "&" : "?") + query
  }
}

/// What the browser brought back on the redirect URI (RFC 6749 section 4.1.2 and 4.1.2.1).
package struct AuthorizationResponse: Sendable, Equatable {
  package var code: String?
  package var state: String?
  package var error: String?
  package var errorDescription: String?

  package init(
    code: String? = nil, state: String? = nil, error: String? = nil, errorDescription: String? = nil
  ) {
    self.code = code
    self.state = state
    self.error = error
    self.errorDescription = errorDescription
  }

  /// Reads the query of the address the browser ended on (a full URL or just its query).
  /// Nil when it holds neither a code nor an error.
  package static func parse(redirectURL text: String) -> AuthorizationResponse? {
    var query = Substring(text)
    if let q = text.firstIndex(of: "?") { query = text[text.index(after: q)...] }
    if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
    var r = AuthorizationResponse()
    for pair in query.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard kv.count == 2, let value = FormDecoding.decode(kv[1]) else { continue }
      switch kv[0] {
      case "code": r.code = value
      case "state": r.state = value
      case "error": r.error = value
      case "error_description": r.errorDescription = value
      default: continue
      }
    }
    return r.code == nil && r.error == nil ? nil : r
  }
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` and `%XX`; with
/// `plusAsSpace: false`, only `%XX` (a URI's user, host and path, as libpq reads them).
package enum FormDecoding {
  /// nil on a bad escape or bytes that are not UTF-8.
  package static func decode(_ s: Substring, plusAsSpace: Bool = true) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(s.utf8.count)
    var it = s.utf8.makeIterator()
    while let b = it.next() {
      switch b {
      case UInt8(ascii: "+") where plusAsSpace: bytes.append(UInt8(ascii: " "))
      case UInt8(ascii: "%"):
        guard let h = it.next(), let l = it.next(), let hi = hex(h), let lo = hex(l) else { return nil }
        bytes.append(hi << 4 | lo)
      default: bytes.append(b)
      }
    }
    return String(validating: bytes, as: UTF8.self)
  }

  /// One hexadecimal digit's value (a `%XX` escape, an HTTP chunk size).
  package static func hex(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
  }
}

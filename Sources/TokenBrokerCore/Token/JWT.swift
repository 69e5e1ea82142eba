/// Reads the time claims of a JWT without verifying it: the broker only needs
/// to know when the token it was given expires.
package enum JWT {
  package struct Claims: Sendable, Equatable {
    package var exp: Double?
    package var iat: Double?
  }

  package static func claims(of token: String) -> Claims? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let payload = base64URLDecode(String(parts[1])),
      let object = JSONValue.parse(payload), object.object != nil
    else { return nil }
    return Claims(exp: object["exp"]?.numberOrNumericString, iat: object["iat"]?.numberOrNumericString)
  }

  /// The header and claims of a JWT (JWS compact form), the signature dropped; nil when
  /// `token` is not one. Nothing is verified: this is for showing what a token says.
  package static func decode(_ token: String) -> (header: JSONValue, claims: JSONValue)? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let h = base64URLDecode(String(parts[0])),
      let p = base64URLDecode(String(parts[1])),
      let header = JSONValue.parse(h), header.object != nil, let claims = JSONValue.parse(p),
      claims.object != nil
    else { return nil }
    return (header, claims)
  }

  static func base64URLDecode(_ text: String) -> [UInt8]? {
    Base64.decodeURL(text)
  }
}

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

  static func base64URLDecode(_ text: String) -> [UInt8]? {
    Base64.decodeURL(text)
  }
}

import Foundation

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
      let object = JSONValue.parseObject(payload)
    else { return nil }
    return Claims(exp: JSONValue.number(object["exp"]), iat: JSONValue.number(object["iat"]))
  }

  static func base64URLDecode(_ text: String) -> [UInt8]? {
    var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s).map { [UInt8]($0) }
  }
}

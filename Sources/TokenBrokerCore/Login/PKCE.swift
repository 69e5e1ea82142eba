/// Proof Key for Code Exchange (RFC 7636), S256 only: the plain method would show the
/// verifier to anyone who sees the authorization request.
package enum PKCE {
  /// A verifier from 32 random bytes: 43 characters of base64url (RFC 7636 section 4.1).
  package static func verifier(random bytes: [UInt8]) -> String { Base64.encodeURL(bytes) }

  /// `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 section 4.2).
  package static func challenge(for verifier: String) -> String {
    Base64.encodeURL(SHA256.hash(verifier.utf8))
  }

  /// An opaque random value (`state`, `nonce`) from random bytes.
  package static func randomValue(_ bytes: [UInt8]) -> String { Base64.encodeURL(bytes) }
}

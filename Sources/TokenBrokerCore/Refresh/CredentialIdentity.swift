/// Whose credential a provider's refresh token is: the token endpoint, the client, the
/// user and the grant, plus the configured seed refresh token. A persisted refresh token
/// is only ever presented under the identity it was issued to, so a provider whose
/// `token_url`, `client_id`, `username` or `grant` changed never sends another issuer,
/// client or account the old one (README "State and rotation").
package struct CredentialIdentity: Sendable, Equatable, CustomStringConvertible {
  /// Fingerprint of `token_url`, `client_id`, `username` and `grant`.
  package let fingerprint: String
  /// Fingerprint of the configured seed refresh token, if any.
  package let seed: String?
  /// Fingerprint of an `api_key` (a new key is a new credential).
  package let key: String?

  package init(_ p: ProviderConfig, secrets: ResolvedSecrets) {
    fingerprint = Self.fnv1a(
      [p.tokenURL, p.clientID ?? "", p.username ?? "", p.grant.rawValue].joined(separator: "\u{0}"))
    seed = secrets.refreshToken.map(Self.fnv1a)
    key = secrets.apiKey.map(Self.fnv1a)
  }

  /// An identity as recorded earlier (a handover from the previous run).
  package init(fingerprint: String, seed: String?, key: String?) {
    self.fingerprint = fingerprint
    self.seed = seed
    self.key = key
  }

  package var description: String { "CredentialIdentity(\(fingerprint), seed: \(seed ?? "none"))" }

  /// FNV-1a 64, hex: identifies a value without storing it.
  package static func fnv1a(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    return String(h, radix: 16)
  }
}

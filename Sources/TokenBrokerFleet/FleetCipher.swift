import Crypto
import Foundation
import TokenBrokerEngine

/// AES-256-GCM over a fleet's rows (README "Fleet"): the store sees only `nonce ‖ ciphertext ‖
/// tag`, and the associated data binds each ciphertext to its fleet, row, version and part, so
/// a ciphertext copied to another credential, fleet or version does not open.
package struct FleetCipher: Sendable {
  /// Which secret of a row a ciphertext holds.
  package enum Part: String, Sendable {
    case accessToken = "at"
    case refreshToken = "rt"
  }

  /// The key check's plaintext, sealed once per fleet by the first broker.
  package static let keyCheckPlaintext = Array("token-broker key check".utf8)
  package static let keySize = 32
  /// 96-bit nonce + 128-bit tag around the ciphertext.
  package static let overhead = 12 + 16

  /// The key's bytes (swift-crypto's SymmetricKey is not Sendable; one is made per use).
  private let keyBytes: [UInt8]
  private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

  /// `key` must be 32 bytes (the `[fleet] key`, base64-decoded).
  package init(key: [UInt8]) throws(FleetStoreError) {
    guard key.count == Self.keySize else {
      throw FleetStoreError(
        .refused,
        "the [fleet] key has \(key.count) bytes; it must be 32 random bytes, base64-encoded "
          + "(e.g. `head -c 32 /dev/urandom | base64`), the same on every broker of the fleet")
    }
    self.keyBytes = key
  }

  /// `"tb1|FLEET|ID|VERSION|at"` (or `|rt`): the associated data of a row's ciphertext.
  package static func aad(fleet: String, id: String, version: Int64, part: Part) -> [UInt8] {
    Array("tb1|\(fleet)|\(id)|\(version)|\(part.rawValue)".utf8)
  }

  /// `"tb1|FLEET|keycheck"`: the associated data of a fleet's key check.
  package static func keyCheckAAD(fleet: String) -> [UInt8] { Array("tb1|\(fleet)|keycheck".utf8) }

  /// `nonce ‖ ciphertext ‖ tag` under a fresh random 96-bit nonce.
  package func seal(_ plaintext: [UInt8], aad: [UInt8]) -> [UInt8] {
    // Throws only for a nonce of the wrong size; a random one never is.
    let box = try! AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(), authenticating: aad)
    return Array(box.combined!)
  }

  /// The plaintext; `.tampered` when `sealed` does not authenticate under this key and `aad`
  /// (another key, row, version or part, or a changed byte). The message names no row: the
  /// store says which.
  package func open(_ sealed: [UInt8], aad: [UInt8]) throws(FleetStoreError) -> [UInt8] {
    guard sealed.count >= Self.overhead,
      let box = try? AES.GCM.SealedBox(combined: sealed),
      let plain = try? AES.GCM.open(box, using: key, authenticating: aad)
    else {
      throw FleetStoreError(.tampered, "a ciphertext did not authenticate")
    }
    return Array(plain)
  }

  /// The key check a new fleet stores.
  package func sealKeyCheck(fleet: String) -> [UInt8] {
    seal(Self.keyCheckPlaintext, aad: Self.keyCheckAAD(fleet: fleet))
  }

  /// Whether `sealed` is this fleet's key check under this key.
  package func opensKeyCheck(_ sealed: [UInt8], fleet: String) -> Bool {
    (try? open(sealed, aad: Self.keyCheckAAD(fleet: fleet))) == Self.keyCheckPlaintext
  }
}

import Testing
import TokenBrokerEngine
import TokenBrokerFleet

/// AES-256-GCM with associated data: a ciphertext opens only under its own key, fleet, row,
/// version and part.
@Suite struct FleetCipherTests {
  let key = Fleet.randomKey()
  let plain = Array("{\"access_token\":\"at-secret\"}".utf8)

  func aad(
    fleet: String = "default", id: String = Fleet.key.id, version: Int64 = 3,
    part: FleetCipher.Part = .accessToken
  )
    -> [UInt8]
  {
    FleetCipher.aad(fleet: fleet, id: id, version: version, part: part)
  }

  @Test func aSealedTokenOpensUnderItsOwnKeyAndAssociatedData() throws {
    let cipher = try FleetCipher(key: key)
    let sealed = cipher.seal(plain, aad: aad())
    #expect(sealed.count == plain.count + FleetCipher.overhead)
    #expect(try cipher.open(sealed, aad: aad()) == plain)
    // A fresh nonce per seal: the same plaintext never gives the same bytes twice.
    #expect(cipher.seal(plain, aad: aad()) != sealed)
    // The plaintext is not in the ciphertext.
    #expect(!sealed.contains(plain[0..<8]))
    #expect(String(decoding: aad(), as: UTF8.self) == "tb1|default|github|repo|0123456789abcdef|3|at")
  }

  @Test func anotherRowFleetVersionOrPartDoesNotOpen() throws {
    let cipher = try FleetCipher(key: key)
    let sealed = cipher.seal(plain, aad: aad())
    for other in [
      aad(fleet: "staging"), aad(id: Fleet.otherKey.id), aad(version: 2), aad(version: 4),
      aad(part: .refreshToken),
    ] {
      let error = #expect(throws: FleetStoreError.self) { try cipher.open(sealed, aad: other) }
      #expect(error?.code == .tampered)
    }
  }

  @Test func anotherKeyOrAChangedByteDoesNotOpen() throws {
    let sealed = try FleetCipher(key: key).seal(plain, aad: aad())
    let other = try FleetCipher(key: Fleet.randomKey())
    #expect(throws: FleetStoreError(.tampered, "a ciphertext did not authenticate")) {
      try other.open(sealed, aad: aad())
    }
    let cipher = try FleetCipher(key: key)
    for i in [0, 11, 12, sealed.count / 2, sealed.count - 1] {
      var flipped = sealed
      flipped[i] ^= 0x01
      #expect(throws: FleetStoreError.self) { try cipher.open(flipped, aad: aad()) }
    }
    #expect(throws: FleetStoreError.self) { try cipher.open(Array(sealed.prefix(20)), aad: aad()) }
    #expect(throws: FleetStoreError.self) { try cipher.open([], aad: aad()) }
  }

  @Test func theKeyCheckOpensOnlyForItsKeyAndFleet() throws {
    let cipher = try FleetCipher(key: key)
    let check = cipher.sealKeyCheck(fleet: "default")
    #expect(cipher.opensKeyCheck(check, fleet: "default"))
    #expect(!cipher.opensKeyCheck(check, fleet: "staging"))
    #expect(!(try FleetCipher(key: Fleet.randomKey())).opensKeyCheck(check, fleet: "default"))
  }

  @Test func aKeyThatIsNot32BytesIsRefusedWithoutShowingIt() {
    let short: [UInt8] = Array(repeating: 0x41, count: 16)
    let error = #expect(throws: FleetStoreError.self) { try FleetCipher(key: short) }
    #expect(error?.code == .refused)
    #expect(error?.message.contains("16 bytes") == true)
    #expect(error?.message.contains("AAAAAAAA") == false)
  }
}

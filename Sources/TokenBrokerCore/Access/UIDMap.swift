/// `/proc/self/uid_map`: peer credentials are only meaningful when the daemon's
/// user namespace maps every uid to itself. Under `PrivateUsers=` or a container
/// with a partial map, every peer except root and the daemon reads as `nobody`.
package enum UIDMap {
  /// True for the initial namespace's map, `0 0 4294967295`.
  package static func isIdentity(_ text: String) -> Bool {
    let lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    guard lines.count == 1, lines[0].count == 3 else { return false }
    return lines[0][0] == "0" && lines[0][1] == "0" && lines[0][2] == "4294967295"
  }

  /// The sentence to refuse start-up with.
  package static let refusal =
    "token-brokerd runs in a user namespace whose uid map is not the identity (see /proc/self/uid_map): "
    + "every client would appear as 'nobody', so access control cannot work. Remove PrivateUsers= from the "
    + "unit, or run the daemon outside the user namespace."
}

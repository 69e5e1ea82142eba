/// Who may use a provider, with `user:`/`group:` names already resolved to ids.
package struct AccessList: Sendable, Equatable {
  package var uids: Set<UInt32>
  package var gids: Set<UInt32>

  package init(uids: Set<UInt32> = [], gids: Set<UInt32> = []) {
    self.uids = uids
    self.gids = gids
  }

  package func admits(uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    uids.contains(uid) || gids.contains(gid) || groups.contains(where: gids.contains)
  }
}

/// The access decision: uid 0 and the daemon's own uid always pass; others
/// must be in the provider's `allow` list or in `[broker] admins`.
package struct AccessPolicy: Sendable, Equatable {
  package var daemonUID: UInt32
  package var admins: AccessList
  /// Per provider name.
  package var providers: [String: AccessList]

  package init(daemonUID: UInt32, admins: AccessList, providers: [String: AccessList]) {
    self.daemonUID = daemonUID
    self.admins = admins
    self.providers = providers
  }

  package func isAdmin(uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    uid == 0 || uid == daemonUID || admins.admits(uid: uid, gid: gid, groups: groups)
  }

  package func mayUse(provider: String, uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    if isAdmin(uid: uid, gid: gid, groups: groups) { return true }
    return providers[provider]?.admits(uid: uid, gid: gid, groups: groups) ?? false
  }
}

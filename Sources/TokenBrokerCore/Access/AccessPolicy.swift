/// Who may use a provider, with `user:`/`group:` names already resolved to ids.
public struct AccessList: Sendable, Equatable {
  public var uids: Set<UInt32>
  public var gids: Set<UInt32>

  public init(uids: Set<UInt32> = [], gids: Set<UInt32> = []) {
    self.uids = uids
    self.gids = gids
  }

  public func admits(uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    uids.contains(uid) || gids.contains(gid) || groups.contains(where: gids.contains)
  }
}

/// The access decision: uid 0 and the daemon's own uid always pass; others
/// must be in the provider's `allow` list or in `[broker] admins`.
public struct AccessPolicy: Sendable, Equatable {
  public var daemonUID: UInt32
  public var admins: AccessList
  /// Per provider name.
  public var providers: [String: AccessList]

  public init(daemonUID: UInt32, admins: AccessList, providers: [String: AccessList]) {
    self.daemonUID = daemonUID
    self.admins = admins
    self.providers = providers
  }

  public func isAdmin(uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    uid == 0 || uid == daemonUID || admins.admits(uid: uid, gid: gid, groups: groups)
  }

  public func mayUse(provider: String, uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
    if isAdmin(uid: uid, gid: gid, groups: groups) { return true }
    return providers[provider]?.admits(uid: uid, gid: gid, groups: groups) ?? false
  }
}

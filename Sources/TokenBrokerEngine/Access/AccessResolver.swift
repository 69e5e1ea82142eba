import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// Turns `user:`/`group:` names into ids when the config is loaded (and on
/// reload); `uid:`/`gid:` are taken as they are.
package enum AccessResolver {
  package static func resolve(_ config: BrokerConfig, daemonUID: UInt32 = getuid()) -> (
    AccessPolicy, warnings: [String]
  ) {
    var warnings: [String] = []
    func list(_ principals: [Principal], _ key: String) -> AccessList {
      var out = AccessList()
      for p in principals {
        switch p {
        case .uid(let n): out.uids.insert(n)
        case .gid(let n): out.gids.insert(n)
        case .user(let name):
          if let uid = userID(name) {
            out.uids.insert(uid)
          } else {
            warnings.append("\(key): no user named \(name); entry ignored")
          }
        case .group(let name):
          if let gid = groupID(name) {
            out.gids.insert(gid)
          } else {
            warnings.append("\(key): no group named \(name); entry ignored")
          }
        }
      }
      return out
    }
    let admins = list(config.broker.admins, "broker.admins")
    var providers: [String: AccessList] = [:]
    for p in config.providers { providers[p.name] = list(p.allow, "providers.\(p.name).allow") }
    return (AccessPolicy(daemonUID: daemonUID, admins: admins, providers: providers), warnings)
  }

  package static func userID(_ name: String) -> UInt32? {
    var pwd = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getpwnam_r(name, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return pwd.pw_uid
  }

  package static func groupID(_ name: String) -> UInt32? {
    var grp = group()
    var result: UnsafeMutablePointer<group>?
    var buffer = [CChar](repeating: 0, count: 16384)
    guard getgrnam_r(name, &grp, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return grp.gr_gid
  }
}

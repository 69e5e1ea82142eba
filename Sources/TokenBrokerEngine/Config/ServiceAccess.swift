import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// A user as the kernel checks file access for it: its uid and every group it is in (the
/// primary group first), as `getpwnam` and `getgrouplist` say.
package struct ServiceUser: Sendable, Equatable {
  package var name: String
  package var uid: uid_t
  /// The primary group first, then the supplementary groups.
  package var gids: [gid_t]
  /// The name of the primary group (for the commands that fix a problem).
  package var groupName: String

  package init(name: String, uid: uid_t, gids: [gid_t], groupName: String) {
    self.name = name
    self.uid = uid
    self.gids = gids
    self.groupName = groupName
  }

  /// Looks `name` up in the user and group databases; nil when there is no such user.
  package static func lookup(_ name: String) -> ServiceUser? {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 16 * 1024)
    guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    let uid = entry.pw_uid
    let gid = entry.pw_gid
    var count: Int32 = 64
    var groups = [gid_t](repeating: 0, count: Int(count))
    while getgrouplist(name, gid, &groups, &count) < 0 {
      groups = [gid_t](repeating: 0, count: Int(count) * 2)
      count = Int32(groups.count)
    }
    var gids = [gid]
    for g in groups.prefix(Int(count)) where !gids.contains(g) { gids.append(g) }
    return ServiceUser(name: name, uid: uid, gids: gids, groupName: groupName(gid) ?? String(gid))
  }

  /// The user this process runs as (its effective uid), when the user database knows it.
  package static func current() -> ServiceUser? {
    guard let name = userName(geteuid()) else { return nil }
    return lookup(name)
  }

  static func userName(_ uid: uid_t) -> String? {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 16 * 1024)
    guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return String(cString: entry.pw_name)
  }

  static func groupName(_ gid: gid_t) -> String? {
    var entry = group()
    var result: UnsafeMutablePointer<group>?
    var buffer = [CChar](repeating: 0, count: 16 * 1024)
    guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return String(cString: entry.gr_name)
  }
}

/// The classic Unix permission check (owner, then group, then others; root passes), computed
/// from a file's mode and owner and a user's ids, without forking or switching users. ACLs are
/// not read: the files this daemon reads have none unless an operator added them.
package enum FileAccess {
  package enum Want: Sendable {
    case read, write, search

    var bits: (owner: mode_t, group: mode_t, other: mode_t) {
      switch self {
      case .read: return (0o400, 0o040, 0o004)
      case .write: return (0o200, 0o020, 0o002)
      case .search: return (0o100, 0o010, 0o001)
      }
    }
  }

  /// Whether a user with `uid` and groups `gids` may `want` a file of `mode`, `owner`, `group`.
  /// Root may read and write anything and search a directory with any x bit.
  package static func allows(
    _ want: Want, mode: mode_t, owner: uid_t, group: gid_t, uid: uid_t, gids: [gid_t]
  ) -> Bool {
    let bits = want.bits
    if uid == 0 {
      return want != .search || mode & (bits.owner | bits.group | bits.other) != 0
    }
    if uid == owner { return mode & bits.owner != 0 }
    if gids.contains(group) { return mode & bits.group != 0 }
    return mode & bits.other != 0
  }
}

/// What the service's user can do with the files of a configuration: `token-brokerd
/// --check-config` run as root checks it, so that a file root can read but the service cannot
/// is found before `systemctl start` (README "Troubleshooting").
package struct ServiceAccessCheck: Sendable {
  package var user: ServiceUser
  /// `stat(2)` following symbolic links; nil when the path does not exist. Replaceable in tests.
  package var status: @Sendable (String) -> (mode: mode_t, owner: uid_t, group: gid_t)?

  package init(
    user: ServiceUser,
    status: @escaping @Sendable (String) -> (mode: mode_t, owner: uid_t, group: gid_t)? = ServiceAccessCheck
      .fileStatus
  ) {
    self.user = user
    self.status = status
  }

  package static func fileStatus(_ path: String) -> (mode: mode_t, owner: uid_t, group: gid_t)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return (st.st_mode, st.st_uid, st.st_gid)
  }

  /// What keeps the user from a file or directory, and the command that fixes it.
  package struct Problem: Sendable, Equatable {
    package var path: String
    /// E.g. `mode 0600 root:root`, or which directory above it cannot be passed.
    package var detail: String
    package var fix: String
  }

  /// Why the user cannot read the file at `path`; nil when it can (or when the file does not
  /// exist: reading it reports that).
  package func readProblem(_ path: String) -> Problem? {
    if let dir = unsearchableDirectory(of: path) { return dir }
    guard let st = status(path), !allows(.read, st) else { return nil }
    return Problem(path: path, detail: describe(st), fix: Self.fixRead(path, st, user))
  }

  /// Why the user cannot create files in the directory `path` (or create it).
  package func writeDirectoryProblem(_ path: String) -> Problem? {
    if let dir = unsearchableDirectory(of: path) { return dir }
    guard let st = status(path) else {
      let parent = Self.parent(of: path)
      guard let p = status(parent), !allows(.write, p) else { return nil }
      return Problem(
        path: path, detail: "it does not exist and \(parent) is \(describe(p))",
        fix: "install -d -m 0700 -o \(user.name) -g \(user.groupName) \(path)")
    }
    guard !(allows(.write, st) && allows(.search, st)) else { return nil }
    return Problem(
      path: path, detail: describe(st),
      fix: "chown \(user.name):\(user.groupName) \(path) && chmod 0700 \(path)")
  }

  /// The first directory above `path` the user may not pass through, as a problem.
  private func unsearchableDirectory(of path: String) -> Problem? {
    for dir in Self.ancestors(of: path) {
      guard let st = status(dir) else { return nil }
      if !allows(.search, st) {
        let fix =
          user.gids.contains(st.group)
          ? "chmod g+x \(dir)" : "chgrp \(user.groupName) \(dir) && chmod g+x \(dir)"
        return Problem(path: path, detail: "no search permission on \(dir), \(describe(st))", fix: fix)
      }
    }
    return nil
  }

  private func allows(_ want: FileAccess.Want, _ st: (mode: mode_t, owner: uid_t, group: gid_t)) -> Bool {
    FileAccess.allows(want, mode: st.mode, owner: st.owner, group: st.group, uid: user.uid, gids: user.gids)
  }

  private func describe(_ st: (mode: mode_t, owner: uid_t, group: gid_t)) -> String {
    let mode = String(st.mode & 0o7777, radix: 8)
    let owner = ServiceUser.userName(st.owner) ?? String(st.owner)
    let group = ServiceUser.groupName(st.group) ?? String(st.group)
    return "mode 0\(mode) \(owner):\(group)"
  }

  /// The command that lets `user` read a file: `chmod u+r` for its owner, else give it to the
  /// user's group, readable by the group and by no one else (the daemon refuses a secret that
  /// others may read).
  package static func fixRead(
    _ path: String, _ st: (mode: mode_t, owner: uid_t, group: gid_t), _ user: ServiceUser
  ) -> String {
    if st.owner == user.uid { return "chmod u+r \(path)" }
    return "chgrp \(user.groupName) \(path) && chmod 0640 \(path)"
  }

  /// Every directory above `path`, from the root down (a relative path starts at ".").
  static func ancestors(of path: String) -> [String] {
    let absolute = path.hasPrefix("/")
    let parts = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
    var result = [absolute ? "/" : "."]
    var current = absolute ? "" : "."
    for part in parts {
      current += "/" + part
      result.append(current)
    }
    return result
  }

  static func parent(of path: String) -> String {
    ancestors(of: path).last ?? "/"
  }
}

/// The user `token-broker.service` runs as: `User=` of the installed unit (a copy in
/// /etc/systemd/system first, then /lib/systemd/system) and of its drop-ins, the last one
/// winning as systemd reads them; `token-broker` when none says.
package enum ServiceUnit {
  package static let defaultUser = "token-broker"
  package static let unitDirectories = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system"]

  /// The unit file and its drop-ins, in the order systemd applies them.
  package static func files(unit: String = "token-broker.service", root: String = "") -> [String] {
    var files: [String] = []
    if let main = unitDirectories.map({ root + $0 + "/" + unit }).first(where: { access($0, R_OK) == 0 }) {
      files.append(main)
    }
    // Drop-ins: sorted by file name across the directories; a name in an earlier directory
    // hides the same name in a later one.
    var dropIns: [String: String] = [:]
    for dir in unitDirectories.reversed() {
      let path = root + dir + "/" + unit + ".d"
      for name in SystemIO.directoryEntries(path) ?? []
      where name.hasSuffix(".conf") {
        dropIns[name] = path + "/" + name
      }
    }
    files += dropIns.keys.sorted().compactMap { dropIns[$0] }
    return files
  }

  /// The value of the last `KEY=` in the `[Service]` sections of `texts` (nil when none, or
  /// when the last one is empty: a reset).
  package static func setting(_ key: String, in texts: [String]) -> String? {
    var value: String?
    for text in texts {
      var section = ""
      for raw in text.split(whereSeparator: \.isNewline) {
        let line = trimmed(raw)
        if line.hasPrefix("[") {
          section = line
          continue
        }
        guard section == "[Service]", !line.hasPrefix("#"), !line.hasPrefix(";") else { continue }
        let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, trimmed(parts[0]) == key else { continue }
        let v = trimmed(parts[1])
        value = v.isEmpty ? nil : v
      }
    }
    return value
  }

  private static func trimmed(_ text: Substring) -> String {
    String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
  }

  /// What the installed unit says: its user (`token-broker` when it names none) and the
  /// directory systemd creates for it as that user's (`StateDirectory=`, under /var/lib).
  package struct Installed: Sendable, Equatable {
    package var user: String
    package var stateDirectory: String?
    /// False when no unit file was found (then `user` is the default).
    package var found: Bool

    package init(user: String, stateDirectory: String?, found: Bool) {
      self.user = user
      self.stateDirectory = stateDirectory
      self.found = found
    }
  }

  package static func installed(root: String = "") -> Installed {
    let files = files(root: root)
    let texts = files.compactMap { SystemIO.readText($0) }
    let state = setting("StateDirectory", in: texts).flatMap { $0.split(separator: " ").first }
    return Installed(
      user: setting("User", in: texts) ?? defaultUser, stateDirectory: state.map { "/var/lib/" + $0 },
      found: !files.isEmpty)
  }
}

extension ConfigLoader {
  /// What the service's user could not do with a loaded configuration: read the file itself,
  /// read a secret file, write the state directory (unless systemd makes it, by
  /// `StateDirectory=`). `token-brokerd --check-config` adds these when run as root.
  package func serviceAccessProblems(
    _ loaded: LoadedConfig, check: ServiceAccessCheck, managedStateDirectory: String?
  ) -> [ConfigProblem] {
    let text = SystemIO.readText(path)
    func line(_ key: [String], fallback: Int = 0) -> Int {
      text.flatMap { ConfigParser.line(of: key, in: $0) } ?? fallback
    }
    let who = "user \(check.user.name)"
    var problems: [ConfigProblem] = []
    if let p = check.readProblem(path) {
      problems.append(
        ConfigProblem(
          path: path, line: 0,
          message: "\(who) (the service's) cannot read the configuration (\(p.detail)); run: \(p.fix)"))
    }
    // Every secret file: the providers', the proxy's password, the fleet's store and key.
    var secrets: [(key: [String], line: Int, source: SecretSource?)] = []
    for provider in loaded.config.providers {
      for (key, source) in [
        ("client_secret", provider.clientSecret), ("password", provider.password),
        ("refresh_token", provider.refreshToken), ("api_key", provider.apiKey),
      ] {
        secrets.append((["providers", provider.name, key], provider.line, source))
      }
    }
    secrets += [
      (["broker", "https_proxy_password"], 0, loaded.config.broker.httpsProxyPassword),
      (["fleet", "store"], 0, loaded.config.fleet?.store), (["fleet", "key"], 0, loaded.config.fleet?.key),
    ]
    for (key, fallback, source) in secrets {
      guard case .file(let file) = source, let p = check.readProblem(file) else { continue }
      problems.append(
        ConfigProblem(
          path: path, line: line(key, fallback: fallback),
          message: "\(key.joined(separator: ".")): \(who) (the service's) cannot read \(file) "
            + "(\(p.detail)); run: \(p.fix)"))
    }
    let stateDir = loaded.config.broker.stateDir
    if stateDir != managedStateDirectory, let p = check.writeDirectoryProblem(stateDir) {
      problems.append(
        ConfigProblem(
          path: path, line: line(["broker", "state_dir"]),
          message: "broker.state_dir: \(who) (the service's) cannot write \(stateDir) (\(p.detail)); "
            + "run: \(p.fix)"))
    }
    return problems
  }
}

import Foundation
import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// The permission rules `token-brokerd --check-config` applies for the service's user, as pure
/// functions of mode, owner, group and the user's ids (no file system, no forking).
@Suite struct ServiceAccessTests {
  typealias Status = (mode: mode_t, owner: uid_t, group: gid_t)

  static let service = ServiceUser(
    name: "token-broker", uid: 990, gids: [990, 991], groupName: "token-broker")

  struct Case: Sendable, CustomTestStringConvertible {
    var want: FileAccess.Want
    var mode: mode_t
    var owner: uid_t
    var group: gid_t
    var allowed: Bool
    var testDescription: String { "\(want) 0\(String(mode, radix: 8)) \(owner):\(group) -> \(allowed)" }
  }

  @Test(arguments: [
    // Owner bits decide for the owner, even when group or others could.
    Case(want: .read, mode: 0o600, owner: 990, group: 0, allowed: true),
    Case(want: .read, mode: 0o044, owner: 990, group: 990, allowed: false),
    // Group bits for any of the user's groups, primary or supplementary.
    Case(want: .read, mode: 0o640, owner: 0, group: 990, allowed: true),
    Case(want: .read, mode: 0o640, owner: 0, group: 991, allowed: true),
    Case(want: .read, mode: 0o604, owner: 0, group: 990, allowed: false),
    // Others' bits for anyone else.
    Case(want: .read, mode: 0o640, owner: 0, group: 0, allowed: false),
    Case(want: .read, mode: 0o644, owner: 0, group: 0, allowed: true),
    Case(want: .write, mode: 0o755, owner: 0, group: 990, allowed: false),
    Case(want: .write, mode: 0o700, owner: 990, group: 990, allowed: true),
    Case(want: .search, mode: 0o750, owner: 0, group: 990, allowed: true),
    Case(want: .search, mode: 0o740, owner: 0, group: 990, allowed: false),
    Case(want: .search, mode: 0o700, owner: 0, group: 0, allowed: false),
    Case(want: .search, mode: 0o711, owner: 0, group: 0, allowed: true),
  ])
  func unixPermissionRules(_ c: Case) {
    let user = Self.service
    #expect(
      FileAccess.allows(c.want, mode: c.mode, owner: c.owner, group: c.group, uid: user.uid, gids: user.gids)
        == c.allowed)
  }

  @Test func rootReadsAndWritesAnythingAndSearchesWithAnyXBit() {
    #expect(FileAccess.allows(.read, mode: 0o000, owner: 5, group: 5, uid: 0, gids: [0]))
    #expect(FileAccess.allows(.write, mode: 0o000, owner: 5, group: 5, uid: 0, gids: [0]))
    #expect(!FileAccess.allows(.search, mode: 0o600, owner: 5, group: 5, uid: 0, gids: [0]))
    #expect(FileAccess.allows(.search, mode: 0o001, owner: 5, group: 5, uid: 0, gids: [0]))
  }

  /// A check over a made-up file system: path -> status.
  func check(_ files: [String: Status]) -> ServiceAccessCheck {
    ServiceAccessCheck(user: Self.service) { files[$0] }
  }

  static let etc: [String: Status] = [
    "/": (0o40755, 0, 0), "/etc": (0o40755, 0, 0), "/etc/token-broker": (0o40750, 0, 990),
  ]

  @Test func aConfigurationOfRootAloneIsAProblemWithTheCommandThatFixesIt() throws {
    var files = Self.etc
    files["/etc/token-broker/broker.toml"] = (0o100640, 0, 0)
    let problem = try #require(check(files).readProblem("/etc/token-broker/broker.toml"))
    #expect(
      problem.fix
        == "chgrp token-broker /etc/token-broker/broker.toml && chmod 0640 /etc/token-broker/broker.toml")
    #expect(problem.detail.hasPrefix("mode 0640 "))
    files["/etc/token-broker/broker.toml"] = (0o100640, 0, 990)
    #expect(check(files).readProblem("/etc/token-broker/broker.toml") == nil)
  }

  @Test func aFileOwnedByTheUserNeedsOnlyItsOwnerBit() throws {
    var files = Self.etc
    files["/etc/token-broker/key"] = (0o100040, 990, 990)
    #expect(
      try #require(check(files).readProblem("/etc/token-broker/key")).fix == "chmod u+r /etc/token-broker/key"
    )
  }

  @Test func aDirectoryThatCannotBePassedIsNamed() throws {
    var files = Self.etc
    files["/root"] = (0o40700, 0, 0)
    files["/root/secret"] = (0o100644, 0, 0)
    let problem = try #require(check(files).readProblem("/root/secret"))
    #expect(problem.detail.hasPrefix("no search permission on /root, mode 0700"))
    #expect(problem.fix == "chgrp token-broker /root && chmod g+x /root")
    files["/etc/token-broker"] = (0o40740, 0, 990)
    files["/etc/token-broker/broker.toml"] = (0o100640, 0, 990)
    let inGroup = try #require(check(files).readProblem("/etc/token-broker/broker.toml"))
    #expect(inGroup.fix == "chmod g+x /etc/token-broker")
  }

  /// `--check-config` as root names every secret file the service's user cannot read: the
  /// proxy's password and the fleet's store and key too, not only the providers' secrets.
  @Test func theSecretsOutsideTheProvidersAreCheckedToo() throws {
    let dir = try TempDirectory.make("tb-access")
    let path = dir + "/broker.toml"
    let text = """
      [broker]
      https_proxy = "http://proxy.example.com:3128"
      https_proxy_user = "broker"
      https_proxy_password = { file = "/etc/token-broker/proxy-password" }

      [fleet]
      store = { file = "/etc/token-broker/fleet-store" }
      key = { file = "/etc/token-broker/fleet-key" }
      """
    _ = FileManager.default.createFile(
      atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    var config = try ConfigParser.parse(text, path: path, fileMode: 0o600)
    config.broker.stateDir = "/var/lib/token-broker"
    let access = AccessPolicy(daemonUID: 990, admins: AccessList(), providers: [:])
    let loaded = LoadedConfig(config: config, secrets: [:], access: access, warnings: [])
    var files = Self.etc
    for name in ["proxy-password", "fleet-store", "fleet-key"] {
      files["/etc/token-broker/\(name)"] = (0o100600, 0, 0)
    }
    let problems = ConfigLoader(path: path).serviceAccessProblems(
      loaded, check: check(files), managedStateDirectory: "/var/lib/token-broker")
    #expect(
      problems.map { "\($0.line): \($0.message.split(separator: " (mode").first ?? "")" } == [
        "4: broker.https_proxy_password: user token-broker (the service's) cannot read /etc/token-broker/proxy-password",
        "7: fleet.store: user token-broker (the service's) cannot read /etc/token-broker/fleet-store",
        "8: fleet.key: user token-broker (the service's) cannot read /etc/token-broker/fleet-key",
      ])
    #expect(
      problems.first?.message.hasSuffix(
        "run: chgrp token-broker /etc/token-broker/proxy-password && chmod 0640 /etc/token-broker/proxy-password"
      )
        == true)
  }

  @Test func aMissingFileIsNotAnAccessProblem() {
    #expect(check(Self.etc).readProblem("/etc/token-broker/none") == nil)
  }

  @Test func theStateDirectoryMustBeWritableOrCreatable() throws {
    var files: [String: Status] = [
      "/": (0o40755, 0, 0), "/var": (0o40755, 0, 0), "/var/lib": (0o40755, 0, 0),
    ]
    let missing = try #require(check(files).writeDirectoryProblem("/var/lib/tb"))
    #expect(missing.fix == "install -d -m 0700 -o token-broker -g token-broker /var/lib/tb")
    files["/var/lib/tb"] = (0o40755, 0, 0)
    let rootOwned = try #require(check(files).writeDirectoryProblem("/var/lib/tb"))
    #expect(rootOwned.fix == "chown token-broker:token-broker /var/lib/tb && chmod 0700 /var/lib/tb")
    files["/var/lib/tb"] = (0o40700, 990, 990)
    #expect(check(files).writeDirectoryProblem("/var/lib/tb") == nil)
  }

  @Test func theUnitsUserIsTheLastUserInAServiceSection() {
    let unit = "[Unit]\nUser=nope\n[Service]\nType=notify\nUser=token-broker\nStateDirectory=token-broker\n"
    #expect(ServiceUnit.setting("User", in: [unit]) == "token-broker")
    #expect(ServiceUnit.setting("User", in: [unit, "[Service]\n# User=x\nUser=svc\n"]) == "svc")
    #expect(ServiceUnit.setting("User", in: [unit, "[Service]\nUser=\n"]) == nil)
    #expect(ServiceUnit.setting("User", in: ["[Unit]\nUser=x\n"]) == nil)
    #expect(ServiceUnit.setting("StateDirectory", in: [unit]) == "token-broker")
  }

  /// Files in a unit directory tree under a temporary root: the main unit from the first
  /// directory that has it, then drop-ins by name.
  @Test func installedUnitReadsTheUnitAndItsDropIns() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("tb-unit-\(UUID().uuidString)")
      .path
    defer { try? FileManager.default.removeItem(atPath: root) }
    func write(_ path: String, _ text: String) throws {
      let full = root + path
      try FileManager.default.createDirectory(
        atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: full, atomically: false, encoding: .utf8)
    }
    #expect(
      ServiceUnit.installed(root: root) == .init(user: "token-broker", stateDirectory: nil, found: false))
    try write(
      "/lib/systemd/system/token-broker.service",
      "[Service]\nUser=token-broker\nStateDirectory=token-broker\n")
    #expect(
      ServiceUnit.installed(root: root)
        == .init(user: "token-broker", stateDirectory: "/var/lib/token-broker", found: true))
    try write("/etc/systemd/system/token-broker.service.d/10-user.conf", "[Service]\nUser=broker2\n")
    try write("/lib/systemd/system/token-broker.service.d/20-user.conf", "[Service]\nUser=broker3\n")
    #expect(ServiceUnit.installed(root: root).user == "broker3")
    try write("/lib/systemd/system/token-broker.service.d/10-user.conf", "[Service]\nUser=hidden\n")
    #expect(ServiceUnit.installed(root: root).user == "broker3")
  }

  @Test func lookupFindsRootWithItsGroup() throws {
    let root = try #require(ServiceUser.lookup("root"))
    #expect(root.uid == 0 && root.gids.first == 0 && root.groupName == "root")
    #expect(ServiceUser.lookup("tb-no-such-user-\(UInt32.random(in: 0...UInt32.max))") == nil)
  }
}

import Testing

@testable import TokenBrokerCore

private let daemonUID: UInt32 = 990
private let adminGroup: UInt32 = 50
private let energyGroup: UInt32 = 2000
private let schedulerUID: UInt32 = 1001

private let policy = AccessPolicy(
  daemonUID: daemonUID,
  admins: AccessList(gids: [adminGroup]),
  providers: [
    "energy": AccessList(uids: [schedulerUID], gids: [energyGroup]),
    "powernaut": AccessList(uids: [1002]),
    "closed": AccessList(),
  ])

@Suite struct AccessPolicyTests {
  // MARK: admins

  @Test func rootAndDaemonAreAlwaysAdmin() {
    let locked = AccessPolicy(daemonUID: daemonUID, admins: AccessList(), providers: [:])
    #expect(locked.isAdmin(uid: 0, gid: 0, groups: []))
    #expect(locked.isAdmin(uid: 0, gid: 12345, groups: [6789]))
    #expect(locked.isAdmin(uid: daemonUID, gid: 4321, groups: []))
    #expect(!locked.isAdmin(uid: 1, gid: 0, groups: [0]))
  }

  @Test func rootAndDaemonMayUseEveryProvider() {
    for name in ["energy", "powernaut", "closed"] {
      #expect(policy.mayUse(provider: name, uid: 0, gid: 0, groups: []))
      #expect(policy.mayUse(provider: name, uid: daemonUID, gid: daemonUID, groups: []))
    }
  }

  @Test func adminsByPrimaryOrSupplementaryGroup() {
    #expect(policy.isAdmin(uid: 1500, gid: adminGroup, groups: []))
    #expect(policy.isAdmin(uid: 1500, gid: 100, groups: [7, adminGroup, 9]))
    #expect(!policy.isAdmin(uid: 1500, gid: 100, groups: [7, 9]))
    #expect(policy.mayUse(provider: "closed", uid: 1500, gid: 100, groups: [adminGroup]))
  }

  @Test func adminsByUID() {
    let p = AccessPolicy(daemonUID: daemonUID, admins: AccessList(uids: [1234]), providers: [:])
    #expect(p.isAdmin(uid: 1234, gid: 100, groups: []))
    #expect(!p.isAdmin(uid: 1235, gid: 100, groups: []))
  }

  @Test func providerUsersAreNotAdmins() {
    #expect(!policy.isAdmin(uid: schedulerUID, gid: 100, groups: [energyGroup]))
  }

  // MARK: provider allow lists

  @Test func allowedByUID() {
    #expect(policy.mayUse(provider: "energy", uid: schedulerUID, gid: 100, groups: []))
  }

  @Test func allowedByPrimaryGID() {
    #expect(policy.mayUse(provider: "energy", uid: 1500, gid: energyGroup, groups: []))
  }

  @Test func allowedBySupplementaryGroup() {
    #expect(policy.mayUse(provider: "energy", uid: 1500, gid: 100, groups: [3, energyGroup]))
  }

  @Test func strangerRefused() {
    #expect(!policy.mayUse(provider: "energy", uid: 1500, gid: 100, groups: [3, 4]))
    #expect(!policy.mayUse(provider: "closed", uid: schedulerUID, gid: energyGroup, groups: [energyGroup]))
  }

  @Test func allowIsPerProvider() {
    #expect(!policy.mayUse(provider: "powernaut", uid: schedulerUID, gid: energyGroup, groups: []))
    #expect(policy.mayUse(provider: "powernaut", uid: 1002, gid: 100, groups: []))
    #expect(!policy.mayUse(provider: "energy", uid: 1002, gid: 100, groups: []))
  }

  @Test func uidIsNotMatchedAgainstGIDs() {
    // uid 2000 is not group 2000.
    #expect(!policy.mayUse(provider: "energy", uid: energyGroup, gid: 100, groups: []))
  }

  @Test func unknownProviderRefused() {
    #expect(!policy.mayUse(provider: "ghost", uid: schedulerUID, gid: energyGroup, groups: [energyGroup]))
    #expect(!policy.mayUse(provider: "", uid: schedulerUID, gid: energyGroup, groups: []))
  }

  @Test func emptyAccessListAdmitsNobody() {
    #expect(!AccessList().admits(uid: 0, gid: 0, groups: [0]))
    #expect(AccessList(uids: [5]).admits(uid: 5, gid: 1, groups: []))
    #expect(AccessList(gids: [6]).admits(uid: 5, gid: 1, groups: [6]))
  }
}

@Suite struct PrincipalTests {
  @Test(arguments: [
    ("user:scheduler", Principal.user("scheduler")),
    ("group:energy", .group("energy")),
    ("group:token-broker-admin", .group("token-broker-admin")),
    ("uid:1001", .uid(1001)),
    ("gid:1001", .gid(1001)),
    ("uid:0", .uid(0)),
    ("gid:4294967295", .gid(4_294_967_295)),
  ])
  func valid(_ text: String, _ expected: Principal) {
    #expect(Principal(parsing: text) == expected)
    #expect(Principal(parsing: text)?.description == text)
  }

  @Test(arguments: [
    "", "scheduler", "user", "user:", "group:", "uid:", "gid:", ":x", "uid:abc", "uid:-1", "uid:1.5",
    "uid:4294967296", "gid:99999999999", "host:x", "USER:x", "User:x", "uid: 5", "usr:x",
  ])
  func invalid(_ text: String) {
    #expect(Principal(parsing: text) == nil)
  }
}

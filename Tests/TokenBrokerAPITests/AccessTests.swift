import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Authorisation by kernel credentials: real clients of other uids (setpriv)
/// against a socket anyone may connect to.
@Suite struct AccessTests {
  static let allowedUID: UInt32 = 1001
  static let allowedGID: UInt32 = 2001
  static let adminGID: UInt32 = 3001

  struct World {
    let upstream: FakeUpstream
    let harness: BrokerHarness
    let tokenctl: String

    func tokenctl(
      uid: UInt32, gid: UInt32 = 4242, groups: [UInt32] = [], _ args: String...
    ) async throws -> ProcessOutput {
      try await ProcessRunner.runAs(
        uid: uid, gid: gid, groups: groups, [tokenctl, "--socket", harness.socketPath] + args)
    }
  }

  static func world(_ body: (World) async throws -> Void) async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, now: { clock.now() })
    try await upstream.start()
    var (p, secrets) = SeedProviders.config("energy", for: upstream)
    p.allow = [.uid(allowedUID), .gid(allowedGID)]
    var (q, qSecrets) = SeedProviders.config("other", for: upstream)
    q.allow = [.uid(1999)]
    var settings = BrokerSettings.testDefaults
    settings.admins = [.gid(adminGID)]
    let harness = try await BrokerHarness.start(
      providers: [p, q], secrets: ["energy": secrets, "other": qSecrets], settings: settings, clock: clock)
    await harness.firstAttempts()
    let world = World(upstream: upstream, harness: harness, tokenctl: try BuiltBinaries.path("tokenctl"))
    do { try await body(world) } catch {
      await harness.shutdown()
      await upstream.stop()
      throw error
    }
    #expect(harness.leakedSecrets(upstreams: [upstream]).isEmpty)
    await harness.shutdown()
    await upstream.stop()
  }

  /// `inspect` (GET /v1/token/NAME/info) is for the token's own callers; login and logout
  /// are for admins only.
  @Test func inspectFollowsAllowAndLoginAndLogoutAreForAdmins() async throws {
    try await Self.world { w in
      let allowed = try await w.tokenctl(uid: Self.allowedUID, "inspect", "energy", "--json")
      #expect(allowed.status == 0, "\(allowed.stderr)")
      #expect(allowed.stdout.contains(#""provider":"energy""#))
      let other = try await w.tokenctl(uid: 1500, "inspect", "energy")
      #expect(other.status == 77)
      for args in [["login", "energy", "--paste"], ["logout", "energy"]] {
        let r = try await ProcessRunner.runAs(
          uid: Self.allowedUID, gid: Self.allowedGID, groups: [],
          [w.tokenctl, "--socket", w.harness.socketPath] + args)
        #expect(r.status == 77, "\(args): \(r.stderr)")
      }
    }
  }

  @Test func allowedUIDGetsTheToken() async throws {
    try await Self.world { w in
      let r = try await w.tokenctl(uid: Self.allowedUID, "token", "energy")
      #expect(r.status == 0, "\(r.stderr)")
      let asRoot = try await w.harness.get("/v1/token/energy", accept: "text/plain").text
      #expect(r.stdout == asRoot + "\n")
    }
  }

  @Test func strangerIsRefusedOnAWorldWritableSocketAndLogged() async throws {
    try await Self.world { w in
      var st = stat()
      stat(w.harness.socketPath, &st)
      #expect(st.st_mode & 0o777 == 0o666)
      let r = try await w.tokenctl(uid: 1002, "token", "energy")
      #expect(r.status == 77)
      #expect(r.stdout.isEmpty)
      #expect(r.stderr.contains("forbidden: uid 1002 may not use energy; add it to providers.energy.allow"))
      let denied = try #require(w.harness.logs.events("denied").first)
      #expect(denied.metadata["caller_uid"] == "1002")
      #expect(denied.metadata["provider"] == "energy")
      #expect(Int(denied.metadata["caller_pid"] ?? "") ?? 0 > 0)
    }
  }

  @Test func membershipThroughASupplementaryGroupOrThePrimaryGroupWorks() async throws {
    try await Self.world { w in
      let viaSupplementary = try await w.tokenctl(
        uid: 1003, groups: [5000, Self.allowedGID], "token", "energy")
      #expect(viaSupplementary.status == 0, "\(viaSupplementary.stderr)")
      let viaPrimary = try await w.tokenctl(uid: 1004, gid: Self.allowedGID, "header", "energy")
      #expect(viaPrimary.status == 0)
      #expect(viaPrimary.stdout.hasPrefix("Authorization: Bearer "))
      let otherProvider = try await w.tokenctl(uid: 1003, groups: [Self.allowedGID], "token", "other")
      #expect(otherProvider.status == 77)
    }
  }

  @Test func adminOnlyEndpointsRefuseNonAdmins() async throws {
    try await Self.world { w in
      #expect(try await w.tokenctl(uid: Self.allowedUID, "refresh", "energy").status == 77)
      #expect(try await w.tokenctl(uid: Self.allowedUID, "reload").status == 77)
      let admin = try await w.tokenctl(uid: 1005, groups: [Self.adminGID], "refresh", "energy")
      #expect(admin.status == 0, "\(admin.stderr)")
      #expect(admin.stdout.contains("energy"))
      #expect(w.upstream.requestCount == 3)
    }
  }

  @Test func statusShowsNonAdminsOnlyTheProvidersTheyMayUse() async throws {
    try await Self.world { w in
      let mine = try await w.tokenctl(uid: Self.allowedUID, "status", "--json")
      #expect(mine.status == 0)
      #expect(mine.stdout.contains(#""name":"energy""#))
      #expect(!mine.stdout.contains(#""name":"other""#))
      let stranger = try await w.tokenctl(uid: 1002, "status")
      #expect(stranger.status == 0)
      #expect(stranger.stdout == "no providers visible to this user\n")
      let admin = try await w.tokenctl(uid: 1005, groups: [Self.adminGID], "status")
      #expect(admin.stdout.contains("energy") && admin.stdout.contains("other"))
      #expect(admin.stdout.hasPrefix("PROVIDER  STATE"))
    }
  }

  @Test func rootAlwaysPasses() async throws {
    try await Self.world { w in
      let r = try await ProcessRunner.run([w.tokenctl, "--socket", w.harness.socketPath, "token", "other"])
      #expect(r.status == 0)
    }
  }
}

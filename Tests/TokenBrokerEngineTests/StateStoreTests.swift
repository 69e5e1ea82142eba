import Foundation
import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// The state directory and its files are trusted only when they are ours: owner, mode, no
/// symlinks, one daemon at a time; a file that cannot be read is set aside, never reused.
@Suite struct StateStoreTests {
  @Test func aStateDirOfAnotherUserOrWritableByOthersIsRefused() throws {
    let dir = try TempDirectory.make("tb-owner")
    chmod(dir, 0o770)
    #expect(throws: StateStore.Failure.self) { try StateStore(directory: dir).prepare() }
    chmod(dir, 0o700)
    try StateStore(directory: dir).prepare()
    if geteuid() == 0 {
      chown(dir, 65534, 65534)
      let error = #expect(throws: StateStore.Failure.self) { try StateStore(directory: dir).prepare() }
      #expect(error?.description.contains("owned by uid 65534") == true)
    }
  }

  @Test func aSecondDaemonOnTheSameStateDirIsRefused() throws {
    let dir = try TempDirectory.make("tb-lock")
    let fd = try StateStore(directory: dir).lock()
    defer { close(fd) }
    let error = #expect(throws: StateStore.Failure.self) { _ = try StateStore(directory: dir).lock() }
    #expect(error?.description.contains("another token-brokerd uses state_dir") == true)
  }

  @Test func aSymlinkedStateFileIsNotFollowed() throws {
    let dir = try TempDirectory.make("tb-link")
    let elsewhere = try TempDirectory.make("tb-elsewhere")
    try StateStore(directory: elsewhere).save(
      ProviderStateRecord(refreshToken: "rt_planted", seed: nil, needsLogin: false, updatedAt: 0), for: "p")
    symlink(elsewhere + "/p.state", dir + "/p.state")
    #expect(throws: StateStore.Failure.self) { try StateStore(directory: dir).load("p") }
  }

  @Test func aGarbledStateFileIsSetAsideAndARefreshTokenProviderWaitsForALogin() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.rotating("pv", for: upstream, seed: "rt_seed_old")
    let dir = try TempDirectory.make("tb-garbled")
    try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/pv.state"))
    let h = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await h.firstAttempts()
    // The seed was most likely rotated long ago: it is not presented.
    #expect(upstream.requestCount == 0)
    #expect(await h.status("pv")?.state == .needsLogin)
    let files = try FileManager.default.contentsOfDirectory(atPath: dir)
    #expect(files.contains { $0.hasPrefix("pv.state.corrupt-") })
    #expect(try StateStore(directory: dir).load("pv")?.needsLogin == true)
    await h.shutdown()
    // A restart stays in needs_login (the same seed); only a new seed starts over.
    let again = try await BrokerHarness.start(
      providers: [p], secrets: ["pv": secrets], clock: clock, stateDir: dir)
    await again.firstAttempts()
    #expect(await again.status("pv")?.state == .needsLogin)
    #expect(upstream.requestCount == 0)
    await again.shutdown()
    await upstream.stop()
  }
}

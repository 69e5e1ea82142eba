import Foundation
import Logging
import Testing
import TokenBrokerEngine
import TokenBrokerTestSupport

@testable import TokenBrokerDaemon

/// The daemon's side of the fleet helper's protocol, against a helper that reads every request
/// and answers none (a wedged `token-broker-fleet`): calls fail at their deadline instead of
/// hanging an engine, and a helper that leaves calls unanswered in a row is started anew.
struct FleetProcessStoreTests {
  /// A helper that records each start in `starts` and its open descriptors in `fds`, then
  /// swallows what it is sent until end of file.
  static func silentHelper(in dir: TempDirectory) throws -> (helper: String, starts: String, fds: String) {
    let starts = dir.file("starts")
    let fds = dir.file("fds")
    let helper = try dir.write(
      "silent-helper",
      "#!/bin/sh\necho started >> \(starts)\nls /proc/$$/fd > \(fds).tmp\nmv \(fds).tmp \(fds)\n"
        + "exec cat <&3 >/dev/null\n",
      mode: 0o755)
    return (helper, starts, fds)
  }

  static func store(helper: String) -> FleetProcessStore {
    FleetProcessStore(
      helper: helper,
      setup: FleetWire.Setup(
        store: "postgresql://broker@localhost/fleet", key: [UInt8](repeating: 7, count: 32), fleet: "test",
        node: "n1", logLevel: "info"),
      logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
      startPatience: .milliseconds(50), requestDeadline: .milliseconds(200))
  }

  static func lines(_ path: String) -> Int {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count
  }

  @Test(.timeLimit(.minutes(1))) func aCallTheHelperDoesNotAnswerFailsAtItsDeadline() async throws {
    let dir = try TempDirectory("tbfp")
    let (helper, _, _) = try Self.silentHelper(in: dir)
    let store = Self.store(helper: helper)
    let runner = Task { await store.run() }
    defer { runner.cancel() }
    let key = FleetKey(provider: "p", scopes: "", identity: "i")
    let error = await #expect(throws: FleetStoreError.self) { _ = try await store.read(key) }
    #expect(error?.code == .unreachable)
    #expect(error?.message == "the fleet helper (token-broker-fleet) did not answer read within 0.2 s")
  }

  @Test(.timeLimit(.minutes(1))) func aHelperThatLeavesCallsUnansweredInARowIsStartedAgain() async throws {
    let dir = try TempDirectory("tbfp")
    let (helper, starts, _) = try Self.silentHelper(in: dir)
    let store = Self.store(helper: helper)
    let runner = Task { await store.run() }
    defer { runner.cancel() }
    let key = FleetKey(provider: "p", scopes: "", identity: "i")
    for _ in 0..<FleetProcessStore.maxMissedAnswers {
      await #expect(throws: FleetStoreError.self) { _ = try await store.read(key) }
    }
    // The third miss killed the helper; `run` starts it again after its one-second delay.
    try await until("the helper started again", within: 20) { Self.lines(starts) >= 2 }
    #expect(Self.lines(starts) == 2)
  }

  /// The helper gets its socket as descriptor 3 and nothing else of the daemon: a client's
  /// connection accepted without close-on-exec (as SwiftNIO accepts them) stays out of it.
  @Test(.timeLimit(.minutes(1))) func theHelperInheritsNoDescriptorButItsSocket() async throws {
    let dir = try TempDirectory("tbfp")
    let (helper, _, fds) = try Self.silentHelper(in: dir)
    var inheritable: [Int32] = [-1, -1]
    #expect(pipe(&inheritable) == 0)
    defer { for fd in inheritable { close(fd) } }
    let store = Self.store(helper: helper)
    let runner = Task { await store.run() }
    defer { runner.cancel() }
    try await until("the helper listed its descriptors", within: 20) {
      FileManager.default.fileExists(atPath: fds)
    }
    let open = Set(
      try String(contentsOfFile: fds, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) })
    #expect(open.isSuperset(of: [0, 1, 2, 3]))
    #expect(open.isDisjoint(with: inheritable), "inherited: \(open.sorted())")
  }
}

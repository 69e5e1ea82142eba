import Foundation
import TokenBrokerTestSupport

/// `token-broker-bench instructions`: the user-space instructions one cached answer costs,
/// token-brokerd and nginx side by side, each counted by valgrind's callgrind over the same
/// keep-alive load (README "Performance"). Unlike requests per second on a shared machine,
/// the count does not move with the scheduler or the neighbours: it shows what a change to
/// the serving path costs or saves. The kernel's share (the socket wake-ups) is not in it.
struct InstructionsBench: Sendable {
  var connections = 2
  var duration = 5.0
  var tokens = ServingSetup.tokens

  static let title = "instructions: user-space instructions per cached answer (callgrind)"

  func command(_ bench: BenchEnvironment) -> String {
    "\(bench.invocation) instructions --tokens \(tokens.joined(separator: ",")) "
      + "--duration \(Format.flag(duration))\(bench.udsloadFlag)"
  }

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let valgrind = try Callgrind.locate(bench)
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    let result = await Result { try await offload { try measure(bench, upstream, valgrind: valgrind) } }
    await upstream.stop()
    return try result.get()
  }

  private func measure(_ bench: BenchEnvironment, _ upstream: FakeUpstream, valgrind: String) throws
    -> BenchTable
  {
    let scratch = try TempDirectory("tbi")
    let binary = try Callgrind.strippedCopy(bench.brokerd, into: scratch)
    let daemonProfile = scratch.file("brokerd.callgrind")
    note("instructions: token-brokerd under valgrind")
    let daemon = try DaemonUnderTest.start(
      bench, startupTimeout: 120, label: "brokerd under valgrind", binary: binary,
      wrapper: Callgrind.wrapper(valgrind, profile: daemonProfile), config: ServingSetup.config(upstream))
    var broker: [String: Double] = [:]
    var bodies: [(path: String, body: [UInt8])] = []
    do {
      for t in tokens {
        let path = ServingSetup.path(t)
        bodies.append((path, try daemon.body(path)))
        broker[t] = try count(
          bench, pid: daemon.pid, socket: daemon.socket, path: path, profile: daemonProfile)
      }
    } catch {
      daemon.stop()
      throw error
    }
    daemon.stop()

    var table = BenchTable(Self.title)
    table.notes = [
      "Each server under `valgrind --tool=callgrind`, \(connections) keep-alive connections of udsload for "
        + "\(Format.flag(duration)) s after a 1 s warm-up; instructions counted from `callgrind_control -z` to "
        + "`-d`, divided by the answers udsload got. nginx: one process (`master_process off`), bodies of the "
        + "same sizes at the same paths."
    ]
    var nginx: [String: Double] = [:]
    do {
      let nginxProfile = scratch.file("nginx.callgrind")
      note("instructions: nginx under valgrind")
      let reference = try NginxReference.start(
        bench, bodies: bodies, wrapper: Callgrind.wrapper(valgrind, profile: nginxProfile))
      defer { reference.stop() }
      for t in tokens {
        nginx[t] = try count(
          bench, pid: reference.child.pid, socket: reference.socket, path: ServingSetup.path(t),
          profile: nginxProfile)
      }
    } catch {
      table.notes.append("No nginx comparison: \(error)")
    }
    for t in tokens {
      let b = broker[t] ?? 0
      let measured =
        nginx[t].map { n in "\(Format.int(b)) / \(Format.int(n)) = \(Format.fixed(b / n, 2))×" }
        ?? "\(Format.int(b)) (no nginx)"
      table.add(Figure("\(t): instructions per answer, brokerd / nginx", measured, command: command(bench)))
    }
    return table
  }

  /// Instructions per answer of the process `pid` (running under callgrind) while udsload
  /// asks it for `path`.
  private func count(_ bench: BenchEnvironment, pid: pid_t, socket: String, path: String, profile: String)
    throws
    -> Double
  {
    _ = try Udsload.run(bench, socket: socket, path: path, connections: connections, seconds: 1)
    try Callgrind.control(["-z", String(pid)])
    let load = try Udsload.run(bench, socket: socket, path: path, connections: connections, seconds: duration)
    try Callgrind.control(["-d", String(pid)])
    guard load.requests > 0 else { throw SetupError("udsload got no answer from \(socket)") }
    return Double(try Callgrind.lastDumpTotal(profile: profile)) / Double(load.requests)
  }
}

/// valgrind's callgrind as the benches use it (`instructions`, `orderfile`).
enum Callgrind {
  /// The valgrind binary, installed with apt-get when missing.
  static func locate(_ bench: BenchEnvironment) throws -> String {
    let path = "/usr/bin/valgrind"
    if access(path, X_OK) != 0 {
      _ = bench.aptInstall(["valgrind"], reason: "valgrind is missing (it counts what runs)")
    }
    guard access(path, X_OK) == 0 else {
      throw SetupError("valgrind is not installed and `apt-get install valgrind` did not provide it")
    }
    return path
  }

  static func wrapper(_ valgrind: String, profile: String) -> [String] {
    [valgrind, "--tool=callgrind", "--demangle=no", "--callgrind-out-file=\(profile)"]
  }

  /// A copy of `binary` without DWARF (valgrind cannot read Swift 6's): the symbol table is enough.
  static func strippedCopy(_ binary: String, into dir: TempDirectory) throws -> String {
    let copy = dir.file((binary as NSString).lastPathComponent)
    let strip = try runToEnd("/usr/bin/strip", ["--strip-debug", "-o", copy, binary], within: 120)
    guard strip.status == 0 else { throw SetupError("strip --strip-debug failed: \(strip.stderr)") }
    return copy
  }

  static func control(_ arguments: [String]) throws {
    let r = try runToEnd("/usr/bin/callgrind_control", arguments, within: 120)
    guard r.status == 0 else {
      throw SetupError(
        "callgrind_control \(arguments.joined(separator: " ")) failed: \(r.stdout) \(r.stderr)")
    }
  }

  /// The instruction total of the newest dump (`PROFILE.N`, N counting up from 1).
  static func lastDumpTotal(profile: String) throws -> Int {
    let dir = (profile as NSString).deletingLastPathComponent
    let base = (profile as NSString).lastPathComponent + "."
    let parts = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
      .filter { $0.hasPrefix(base) }
      .compactMap { name in Int(name.dropFirst(base.count)).map { (part: $0, name: name) } }
    guard let last = parts.max(by: { $0.part < $1.part }),
      let text = try? String(contentsOfFile: dir + "/" + last.name, encoding: .utf8)
    else { throw SetupError("callgrind wrote no dump next to \(profile)") }
    for line in text.split(separator: "\n") where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
      if let n = Int(line.split(separator: " ").last ?? "") { return n }
    }
    throw SetupError("callgrind's dump \(last.name) has no summary line")
  }
}

import Foundation
import NIOConcurrencyHelpers
import TokenBrokerEngine
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// `kill -9` at random moments while a `refresh_token` provider rotates against an
/// upstream with reuse detection, then a restart on the same state_dir, classified:
/// - intact: the persisted refresh token is the one the server holds valid, and the
///   restarted daemon carries on (`ok`);
/// - window: the server had rotated the persisted token and the daemon died before it
///   persisted the answer (no client can close that window): the restarted daemon's
///   first refresh is a reuse, the server revokes the family, and GET /v1/status must
///   say `needs_login`;
/// - anything else is a failure: a grant lost outside the window, a torn or 0644 state
///   file, `needs_login` without the window, a daemon that does not start.
final class CrashSuite {
  struct Options {
    var cycles = 1000
    var maxKillDelayMs = 120.0
    var upstreamLatencyMs = 2.0
    var lifetime = 2
    var seed: UInt64 = UInt64(truncatingIfNeeded: Int(monotonic() * 1e6))
    var strace = true
    var daemon: String?
    var keep = false
  }

  struct Counts {
    var intact = 0
    var window = 0
    var killedDuringStartup = 0
    var killedDuringRotation = 0
    var tempFileLeft = 0
    var noStateFile = 0
    var restarts = 0
    var rotations = 0
    var failures: [String] = []
  }

  let provider = "rotating"
  let options: Options
  let dir: String
  let socket: String
  let stateDir: String
  let configPath: String
  let upstream: FakeUpstream
  let server: TrackedUpstreamServer
  let daemonPath: String
  let api: SocketAPIClient
  var daemon: DaemonProcess
  var seedToken = ""
  var family = 0
  var counts = Counts()
  var random: SplitMix64
  var startupSeconds = 0.2
  var straceReport: StraceCheck.Report?

  init(options: Options) throws {
    self.options = options
    daemonPath = try options.daemon ?? BuiltBinaries.path("token-brokerd")
    dir = try TempDirectory.make("tbr-crash")
    socket = dir + "/s"
    stateDir = dir + "/state"
    configPath = dir + "/broker.toml"
    random = SplitMix64(seed: options.seed)
    var settings = FakeUpstream.Settings()
    settings.lifetime = options.lifetime
    settings.rotateRefreshTokens = true
    settings.reuseDetection = true
    let upstream = FakeUpstream(.powerverse, settings: settings, now: { Date().timeIntervalSince1970 })
    if options.upstreamLatencyMs > 0 { upstream.failAlways(.delayed(options.upstreamLatencyMs / 1000)) }
    self.upstream = upstream
    server = try Blocking.wait { try await upstream.startTracked() }
    api = SocketAPIClient(socketPath: socket)
    daemon = DaemonProcess(
      executable: daemonPath, arguments: ["--config", configPath], logPath: dir + "/daemon.log")
  }

  var stateFile: String { stateDir + "/" + provider + ".state" }

  func writeConfig() throws {
    var c = DaemonConfig(socket: socket, stateDir: stateDir)
    c.providers = [
      """
      [providers.\(provider)]
      token_url = "\(server.tokenURL)"
      grant = "refresh_token"
      client_auth = "none"
      body = "json"
      client_id = "\(upstream.settings.clientID)"
      refresh_token = "\(seedToken)"
      """
    ]
    try TempDirectory.write(configPath, c.text)
  }

  /// A new grant family: a fresh first refresh token, configured and known to the server.
  func newFamily() throws {
    family += 1
    seedToken = "rt_seed_\(family)_" + String(random.next(), radix: 16)
    upstream.seedRefreshToken(seedToken)
    try writeConfig()
  }

  func startDaemon() throws {
    try daemon.start()
    counts.restarts += 1
  }

  /// Starts the daemon and waits until it holds a token; fails unless `ok`.
  func startReady(_ why: String) throws {
    let t0 = monotonic()
    try startDaemon()
    let state = try api.waitSettled(provider, daemon: daemon, timeout: 20)
    guard state == "ok" else {
      throw SetupError("\(why): the daemon came up \(state), not ok:\n\(daemon.logTail())")
    }
    startupSeconds = 0.8 * startupSeconds + 0.2 * (monotonic() - t0)
  }

  func run() throws -> Counts {
    defer {
      daemon.kill9()
      let server = self.server
      Blocking.waitQuietly { await server.close() }
      if !options.keep { try? FileManager.default.removeItem(atPath: dir) }
    }
    log("crash: \(options.cycles) cycles, seed \(options.seed), scratch \(dir)")
    try newFamily()
    if options.strace { try runStrace() }
    try startReady("first start")
    let began = monotonic()
    for cycle in 1...max(1, options.cycles) {
      do {
        try runCycle(cycle)
      } catch {
        counts.failures.append("cycle \(cycle): \(error)")
        log("crash: cycle \(cycle) FAILED: \(error)")
        // Start over from a fresh family so that the remaining cycles still count.
        daemon.kill9()
        _ = try quiesce()
        try newFamily()
        try startReady("recovery after a failed cycle")
      }
      if cycle % 50 == 0 || cycle == options.cycles {
        log(
          "crash: \(cycle)/\(options.cycles) cycles in \(Int(monotonic() - began)) s: \(counts.intact) intact, \(counts.window) window (needs_login), \(counts.failures.count) failures"
        )
      }
    }
    counts.rotations = upstream.issuedRefreshTokens.count - family
    return counts
  }

  /// One kill and its classification. The daemon is running and `ok` before and after.
  func runCycle(_ cycle: Int) throws {
    if random.unit() < 0.25 {
      // Kill during start-up (the first refresh of a fresh process). A graceful stop first:
      // it must never lose the grant either.
      daemon.terminate()
      guard try quiesce() else {
        throw SetupError("the upstream still has open connections 5 s after the daemon stopped")
      }
      let persisted = try persistedToken()
      guard upstream.acceptsRefreshToken(persisted.token) else {
        throw SetupError("after a graceful stop (SIGTERM) the persisted refresh token is not the valid one")
      }
      try startDaemon()
      sleepMilliseconds(random.unit() * startupSeconds * 1500)
      counts.killedDuringStartup += 1
    } else {
      let refresher = Refresher(socket: socket, provider: provider)
      refresher.start()
      sleepMilliseconds(random.unit() * options.maxKillDelayMs)
      counts.killedDuringRotation += 1
      daemon.kill9()
      refresher.stop()
    }
    daemon.kill9()
    guard try quiesce() else {
      throw SetupError("the upstream still has open connections 5 s after kill -9")
    }
    let persisted = try persistedToken(counting: true)
    let issued = upstream.issuedRefreshTokens
    let expectWindow: Bool
    if upstream.acceptsRefreshToken(persisted.token) {
      expectWindow = false
    } else if issued.count >= 2, issued[issued.count - 2] == persisted.token,
      upstream.acceptsRefreshToken(issued[issued.count - 1])
    {
      // The server rotated the persisted token once; its answer never reached the disk.
      expectWindow = true
    } else {
      let position = issued.lastIndex(of: persisted.token).map { "\(issued.count - 1 - $0) rotations behind" }
      throw SetupError(
        "grant lost outside the window: the persisted refresh token is \(position ?? "unknown to the server"), the server holds \(upstream.validRefreshTokens.count) valid"
      )
    }

    try startDaemon()
    let state = try api.waitSettled(provider, daemon: daemon, timeout: 20)
    if expectWindow {
      guard state == "needs_login" else {
        throw SetupError(
          "the unclosable window was hit but the restarted daemon reports \(state), not needs_login")
      }
      guard upstream.familyRevoked else {
        throw SetupError("needs_login, but the server did not see the reuse (family not revoked)")
      }
      counts.window += 1
      // An operator configures a new refresh token.
      daemon.terminate()
      try newFamily()
      try startReady("after configuring a new refresh token")
    } else {
      guard state == "ok" else {
        throw SetupError(
          "the persisted refresh token was valid, yet the restarted daemon reports \(state):\n\(daemon.logTail())"
        )
      }
      // What it holds now is the server's current token, or the one a refresh is rotating.
      let now = try persistedToken()
      let latest = upstream.issuedRefreshTokens
      guard
        upstream.acceptsRefreshToken(now.token)
          || (latest.count >= 2 && latest[latest.count - 2] == now.token)
      else { throw SetupError("ok after restart, but the persisted refresh token is not the server's") }
      counts.intact += 1
    }
  }

  /// Waits until the upstream processed everything the dead daemon had sent.
  func quiesce() throws -> Bool {
    let server = self.server
    return try Blocking.wait { await server.quiesce(timeout: 5) }
  }

  /// The refresh token a restart would use: the state file's when it belongs to the
  /// configured seed, else the seed. A torn or group-readable file is a failure.
  func persistedToken(counting: Bool = false) throws -> (token: String, fromFile: Bool) {
    if counting, Self.tempFileLeft(next: stateFile) { counts.tempFileLeft += 1 }
    var st = stat()
    guard stat(stateFile, &st) == 0 else {
      if counting { counts.noStateFile += 1 }
      return (seedToken, false)
    }
    guard st.st_mode & 0o777 == 0o600 else {
      throw SetupError("\(stateFile) has mode \(String(st.st_mode & 0o777, radix: 8)), not 0600")
    }
    guard let data = FileManager.default.contents(atPath: stateFile) else {
      throw SetupError("cannot read \(stateFile)")
    }
    let record: ProviderStateRecord
    do { record = try StateStore.decode(Array(data), file: stateFile) } catch {
      throw SetupError("torn state file (\(data.count) bytes): \(error)")
    }
    guard record.seed == ProviderStateRecord.fingerprint(seedToken) else { return (seedToken, false) }
    if record.needsLogin { throw SetupError("the state file says needs_login although no reuse happened") }
    guard let token = record.refreshToken else { throw SetupError("the state file holds no refresh token") }
    return (token, true)
  }

  /// One daemon run under strace: start, five refreshes, SIGTERM; then the write order.
  func runStrace() throws {
    let candidates: [String] = ["/usr/bin/strace", "/bin/strace"]
    let strace = candidates.first { access($0, X_OK) == 0 }
    guard let strace else {
      throw SetupError("strace is not installed (apt-get install strace), or pass --no-strace")
    }
    let traceFile = dir + "/strace.log"
    let traced = DaemonProcess(
      executable: strace,
      arguments: [
        "-f", "-qq", "-e", StraceCheck.syscalls, "-o", traceFile, daemonPath, "--config", configPath,
      ], logPath: dir + "/daemon.log")
    try traced.start()
    defer { traced.kill9() }
    let state = try api.waitSettled(provider, daemon: traced, timeout: 60)
    guard state == "ok" else { throw SetupError("under strace the daemon came up \(state)") }
    for _ in 0..<5 {
      let r = try api.request("POST", "/v1/providers/\(provider)/refresh", timeout: 20)
      guard r.status == 200 else { throw SetupError("refresh under strace answered \(r.status)") }
    }
    guard let child = StraceCheck.tracedChild(of: traced.pid) else {
      throw SetupError("cannot find the daemon under strace")
    }
    kill(child, SIGTERM)
    let deadline = monotonic() + 30
    while !traced.hasExited && monotonic() < deadline { sleepMilliseconds(5) }
    let trace = (try? String(contentsOfFile: traceFile, encoding: .utf8)) ?? ""
    let report = StraceCheck.verify(trace: trace, stateFile: stateFile, directory: stateDir)
    straceReport = report
    log("crash: strace: \(report.sequences) state writes, each temp → write → fsync → rename → fsync(dir)")
    for p in report.problems { log("crash: strace: \(p)") }
    if !report.problems.isEmpty || report.sequences < 6 {
      throw SetupError(
        "write order under strace: \(report.sequences) complete sequences (at least 6 expected), problems: \(report.problems)"
      )
    }
  }
}

/// Forces refreshes back to back over the socket until stopped (the daemon's death ends
/// its requests at once).
final class Refresher: @unchecked Sendable {
  let client: SocketAPIClient
  let path: String
  private let stopped = NIOLockedValueBox(false)
  private let done = DispatchSemaphore(value: 0)

  init(socket: String, provider: String) {
    client = SocketAPIClient(socketPath: socket)
    path = "/v1/providers/\(provider)/refresh"
  }

  func start() {
    Thread {
      while !self.stopped.withLockedValue({ $0 }) {
        _ = try? self.client.request("POST", self.path, timeout: 10)
      }
      self.done.signal()
    }.start()
  }

  func stop() {
    stopped.withLockedValue { $0 = true }
    done.wait()
  }
}

/// A small seeded generator: a run is reproducible with `--seed`.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in 0..<1.
  mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

extension Blocking {
  static func waitQuietly(_ body: @escaping @Sendable () async -> Void) {
    _ = try? wait { await body() }
  }
}

extension CrashSuite {
  /// Whether a kill left a temp file (`NAME.state.tmp-XXXXXX`) beside the state file.
  static func tempFileLeft(next stateFile: String) -> Bool {
    let directory = String(stateFile[..<(stateFile.lastIndex(of: "/") ?? stateFile.startIndex)])
    let prefix =
      String(stateFile[stateFile.index(after: stateFile.lastIndex(of: "/") ?? stateFile.startIndex)...])
      + ".tmp"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.contains { $0.hasPrefix(prefix) }
  }
}

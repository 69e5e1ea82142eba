import Dispatch
import Logging
import NIOConcurrencyHelpers
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerSystemd

#if canImport(Glibc)
  import Glibc
#endif

/// The fleet's store as token-brokerd sees it (README "Fleet"): requests to the fleet helper
/// (`token-broker-fleet`, a child process on a socket pair, which holds the database
/// connections) and the changes it announces. `run()` starts the helper and starts it again,
/// with a growing delay, if it dies; while it is down every call fails as `.unreachable`, so
/// the engines serve what they have and shared refresh tokens wait. A call the helper does not
/// answer within `requestDeadline` (its own statements are bounded at 10 s) fails the same way,
/// and a helper that leaves `maxMissedAnswers` calls in a row unanswered is killed and started
/// again: an engine never waits on a wedged helper.
final class FleetProcessStore: FleetStore, Sendable {
  let helper: String
  let setup: FleetWire.Setup
  let logger: Logger
  let changes: AsyncStream<FleetChange>
  private let sink: AsyncStream<FleetChange>.Continuation

  struct Pending {
    var continuation: CheckedContinuation<JSONValue, any Error>
    /// Fails the call at its deadline; cancelled when the answer comes.
    var deadline: Task<Void, Never>?
  }

  struct State {
    var channel: LineChannel?
    var pid: pid_t = 0
    var pending: [Int: Pending] = [:]
    var next = 0
    /// Calls in a row whose deadline passed without an answer.
    var missed = 0
    /// Why the helper's store cannot be used for good (a wrong key, a refused role).
    var failure: FleetStoreError?
    /// The helper said its store is ready (tables and key checked, LISTEN live).
    var ready = false
    var readyWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
  }

  /// How long a request waits for a starting helper's store before it is tried anyway.
  let startPatience: Duration
  /// How long a call waits for the helper's answer.
  let requestDeadline: Duration
  /// Unanswered calls in a row after which the helper is killed (and started again by `run`).
  static let maxMissedAnswers = 3
  private let state = NIOLockedValueBox(State())

  init(
    helper: String, setup: FleetWire.Setup, logger: Logger, startPatience: Duration = .seconds(10),
    requestDeadline: Duration = .seconds(15)
  ) {
    self.helper = helper
    self.setup = setup
    self.logger = logger
    self.startPatience = startPatience
    self.requestDeadline = requestDeadline
    (changes, sink) = AsyncStream.makeStream(of: FleetChange.self)
  }

  /// The helper next to this executable (a build tree), else in `../libexec/token-broker/`
  /// beside its `bin/` (`make install`, the package: /usr/libexec/token-broker).
  static func locateHelper() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if n > 0 {
      let me = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
      if let slash = me.lastIndex(of: "/") {
        let dir = String(me[..<slash])
        for candidate in [dir + "/token-broker-fleet", dir + "/../libexec/token-broker/token-broker-fleet"]
        where access(candidate, X_OK) == 0 {
          return candidate
        }
      }
    }
    return "/usr/libexec/token-broker/token-broker-fleet"
  }

  // MARK: Requests

  func read(_ key: FleetKey) async throws -> FleetRow? {
    let r = try await call("read", [("key", FleetWire.json(key))])
    return r.isNull ? nil : try decoded(FleetWire.row(r), "read")
  }

  func claim(_ key: FleetKey, version: Int64?, node: String, lease: Double) async throws -> FleetClaim? {
    let r = try await call(
      "claim",
      [
        ("key", FleetWire.json(key)), ("version", version.map { .number(Double($0)) } ?? .null),
        ("node", .string(node)), ("lease", .number(lease)),
      ])
    return r.isNull ? nil : try decoded(FleetWire.claim(r), "claim")
  }

  func commit(_ claim: FleetClaim, tokens: FleetTokens, seed: String?) async throws -> Bool {
    let r = try await call(
      "commit",
      [
        ("claim", FleetWire.json(claim)), ("tokens", FleetWire.json(tokens)),
        ("seed", seed.map { .string($0) } ?? .null),
      ])
    return try decoded(r.bool, "commit")
  }

  func release(_ claim: FleetClaim) async throws {
    _ = try await call("release", [("claim", FleetWire.json(claim))])
  }

  func seed(_ key: FleetKey, tokens: FleetTokens, seed: String, node: String) async throws -> Int64 {
    let r = try await call(
      "seed",
      [
        ("key", FleetWire.json(key)), ("tokens", FleetWire.json(tokens)), ("seed", .string(seed)),
        ("node", .string(node)),
      ])
    return Int64(try decoded(r.number, "seed"))
  }

  func forget(provider: String, node: String) async throws {
    _ = try await call("forget", [("provider", .string(provider)), ("node", .string(node))])
  }

  private func decoded<T>(_ value: T?, _ op: String) throws -> T {
    guard let value else {
      throw FleetStoreError(.unreachable, "the fleet helper's answer to \(op) was malformed")
    }
    return value
  }

  /// Returns once the helper's store is ready, or after `startPatience`.
  private func awaitReady() async {
    if state.withLockedValue({ $0.ready || $0.failure != nil }) { return }
    let ticket = state.withLockedValue { s -> Int in
      s.next += 1
      return s.next
    }
    let timeout = Task {
      try? await Task.sleep(for: startPatience)
      state.withLockedValue { $0.readyWaiters.removeValue(forKey: ticket) }?.resume()
    }
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let now = state.withLockedValue { s -> Bool in
        if s.ready || s.failure != nil { return true }
        s.readyWaiters[ticket] = c
        return false
      }
      if now { c.resume() }
    }
    timeout.cancel()
  }

  private func wakeReadyWaiters(ready: Bool) {
    let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
      if ready { s.ready = true }
      defer { s.readyWaiters.removeAll() }
      return Array(s.readyWaiters.values)
    }
    for w in waiters { w.resume() }
  }

  private func call(_ op: String, _ fields: [(String, JSONValue)]) async throws -> JSONValue {
    await awaitReady()
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<JSONValue, any Error>) in
      let sent = state.withLockedValue { s -> (LineChannel, Int)? in
        guard let channel = s.channel else { return nil }
        s.next += 1
        s.pending[s.next] = Pending(continuation: c)
        return (channel, s.next)
      }
      guard let (channel, id) = sent else {
        let failure = state.withLockedValue { $0.failure }
        c.resume(
          throwing: failure
            ?? FleetStoreError(.unreachable, "the fleet helper (token-broker-fleet) is not running"))
        return
      }
      let deadline = Task { [requestDeadline] in
        guard (try? await Task.sleep(for: requestDeadline)) != nil else { return }
        self.missedDeadline(id, op)
      }
      let answered = state.withLockedValue { s -> Bool in
        guard s.pending[id] != nil else { return true }
        s.pending[id]!.deadline = deadline
        return false
      }
      if answered { deadline.cancel() }
      let line = FleetWire.line(.object([("id", .number(Double(id))), ("op", .string(op))] + fields))
      if !channel.write(line) {
        if let waiting = state.withLockedValue({ $0.pending.removeValue(forKey: id) }) {
          waiting.deadline?.cancel()
          waiting.continuation.resume(
            throwing: FleetStoreError(.unreachable, "the fleet helper (token-broker-fleet) went away"))
        }
      }
    }
  }

  /// The call `id` got no answer in time: it fails; after `maxMissedAnswers` in a row the
  /// helper is killed, which ends `runOnce` and fails every other call waiting on it.
  private func missedDeadline(_ id: Int, _ op: String) {
    let (waiting, kill) = state.withLockedValue { s -> (Pending?, pid_t?) in
      guard let waiting = s.pending.removeValue(forKey: id) else { return (nil, nil) }
      s.missed += 1
      guard s.missed >= Self.maxMissedAnswers, s.pid > 0 else { return (waiting, nil) }
      s.missed = 0
      return (waiting, s.pid)
    }
    guard let waiting else { return }
    let c = requestDeadline.components
    let exact = Double(c.seconds) + Double(c.attoseconds) / 1e18
    let seconds = exact == exact.rounded() ? "\(Int(exact))" : "\(exact)"
    waiting.continuation.resume(
      throwing: FleetStoreError(
        .unreachable, "the fleet helper (token-broker-fleet) did not answer \(op) within \(seconds) s"))
    if let kill {
      logger.error(
        "the fleet helper (token-broker-fleet) left \(Self.maxMissedAnswers) requests in a row unanswered; killing it (it is started again)",
        metadata: ["event": "fleet_helper_unresponsive"])
      Glibc.kill(kill, SIGKILL)
    }
  }

  // MARK: The helper's life

  /// Starts the helper, and again whenever it dies, until cancelled.
  func run() async {
    var delay: Double = 1
    while !Task.isCancelled {
      let started = SystemdNotifier.monotonicMicroseconds()
      do {
        try await runOnce()
      } catch {
        logger.error("\(error)", metadata: ["event": "fleet_helper_failed"])
      }
      if Task.isCancelled { break }
      if SystemdNotifier.monotonicMicroseconds() - started > 60_000_000 { delay = 1 }
      logger.warning(
        "the fleet helper (token-broker-fleet) stopped; starting it again in \(Int(delay)) s",
        metadata: ["event": "fleet_helper_restart"])
      try? await Task.sleep(for: .seconds(delay))
      delay = min(delay * 2, 30)
    }
  }

  struct StartFailure: Error, CustomStringConvertible {
    var description: String
  }

  private func runOnce() async throws {
    var pair: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0
    else {
      throw StartFailure(
        description: "cannot make the fleet helper's socket pair: \(String(cString: strerror(errno)))")
    }
    let pid: pid_t
    do {
      pid = try spawn(childEnd: pair[1])
    } catch {
      close(pair[0])
      close(pair[1])
      throw error
    }
    close(pair[1])
    let ours = pair[0]
    let channel = LineChannel(fd: ours)
    state.withLockedValue { s in
      s.channel = channel
      s.pid = pid
      s.failure = nil
    }
    channel.write(FleetWire.line(setup.json))
    await withTaskCancellationHandler {
      await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        DispatchQueue(label: "token-brokerd.fleet-helper").async { [self] in
          while let line = channel.readLine() { received(line) }
          done.resume()
        }
      }
    } onCancel: {
      // The helper exits when its end reads end of file.
      shutdown(ours, Int32(SHUT_RDWR))
    }
    let pending = state.withLockedValue { s -> [Pending] in
      s.channel = nil
      s.pid = 0
      s.ready = false
      s.missed = 0
      defer { s.pending.removeAll() }
      return Array(s.pending.values)
    }
    for p in pending {
      p.deadline?.cancel()
      p.continuation.resume(
        throwing: FleetStoreError(.unreachable, "the fleet helper (token-broker-fleet) went away"))
    }
    close(ours)
    let status = await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
      DispatchQueue.global().async {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        c.resume(returning: status)
      }
    }
    if !Task.isCancelled {
      let how = status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
      logger.error(
        "the fleet helper (token-broker-fleet) ended: \(how)", metadata: ["event": "fleet_helper_ended"])
    }
  }

  private func received(_ line: [UInt8]) {
    guard let v = JSONValue.parse(line) else { return }
    if let id = v["id"]?.number {
      // An answer after its call's deadline finds nothing waiting and is dropped.
      guard
        let p = state.withLockedValue({ s -> Pending? in
          let p = s.pending.removeValue(forKey: Int(id))
          if p != nil { s.missed = 0 }
          return p
        })
      else { return }
      p.deadline?.cancel()
      if let error = v["error"], !error.isNull {
        p.continuation.resume(throwing: FleetWire.error(error))
      } else {
        p.continuation.resume(returning: v["result"] ?? .null)
      }
      return
    }
    if v["event"]?.string == "ready" {
      wakeReadyWaiters(ready: true)
      logger.info("the fleet's store is ready", metadata: ["event": "fleet_store_ready"])
      return
    }
    if v["event"]?.string == "failed" {
      let failure = FleetWire.error(v["error"])
      state.withLockedValue { $0.failure = failure }
      wakeReadyWaiters(ready: false)
      logger.critical(
        "the fleet's store cannot be used: \(failure)", metadata: ["event": "fleet_store_failed"])
      return
    }
    if let change = FleetWire.change(v) { sink.yield(change) }
  }

  private func spawn(childEnd: Int32) throws -> pid_t {
    // dup2 clears close-on-exec on descriptor 3 (a descriptor already 3 is moved first).
    var source = childEnd
    if source == 3 {
      source = fcntl(childEnd, F_DUPFD_CLOEXEC, 4)
      guard source >= 0 else { throw StartFailure(description: "cannot move the helper's descriptor") }
    }
    defer { if source != childEnd { close(source) } }
    // Nothing of the daemon's environment (NOTIFY_SOCKET, LISTEN_FDS, credentials) but PATH
    // and the backtracer setting the unit makes.
    var environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    if let backtrace = getenv("SWIFT_BACKTRACE") {
      environment.append("SWIFT_BACKTRACE=" + String(cString: backtrace))
    }
    let from = source
    do {
      // Descriptors 0 (/dev/null), 1 and 2 (the daemon's, the journal) and 3 (the socket pair);
      // no client connection or listening socket of the daemon.
      return try ProcessSpawn.start(helper, [], environment: environment, closingFrom: 4) { actions in
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, from, 3)
      }
    } catch {
      throw StartFailure(
        description:
          "cannot start the fleet helper \(helper): \(error); it is installed with token-brokerd (README \"Fleet\")"
      )
    }
  }
}

import Dispatch
import Logging
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerFleet

#if canImport(Glibc)
  import Glibc
#endif

/// `token-broker-fleet`: the fleet's database connections, in a process of their own
/// (README "Fleet"). token-brokerd starts it under `[fleet]` with one end of a socket pair as
/// descriptor 3, sends the setup line (connection string, key, fleet, node), then requests;
/// this process answers each, announces the store's changes, and exits when the daemon closes
/// its end or dies. It exists because the PostgreSQL driver needs Foundation, which
/// token-brokerd does not link (README "Performance"): the daemon stays small whether or not
/// a fleet is configured.
@main
enum FleetHelper {
  static func main() async {
    // Gone with the daemon, whatever killed it: its end of the socket pair closes, and the
    // request loop below reads end of file. (Not PR_SET_PDEATHSIG: it fires when the thread
    // that spawned this process ends, and the daemon spawns from a pool thread.)
    signal(SIGPIPE, SIG_IGN)
    let channel = LineChannel(fd: 3)
    guard let first = channel.readLine(), let value = JSONValue.parse(first),
      let setup = FleetWire.Setup(value)
    else {
      standardError(
        "<3>token-broker-fleet: no setup from token-brokerd on descriptor 3; it is started by token-brokerd only\n"
      )
      exit(64)
    }
    let level = Logger.Level(rawValue: setup.logLevel) ?? .info
    LoggingSystem.bootstrap { label in HelperLogHandler(label: label, level: level) }
    let logger = Logger(label: "token-broker-fleet")
    let dsn: PostgresDSN
    do {
      dsn = try PostgresDSN(parsing: setup.store)
    } catch {
      let failure = FleetStoreError(.refused, "fleet.store: \(error.description)")
      channel.write(
        FleetWire.line(.object([("event", .string("failed")), ("error", FleetWire.json(failure))])))
      exit(78)
    }
    let store = PostgresFleetStore(
      dsn: dsn, key: setup.key, fleet: setup.fleet, node: setup.node, logger: logger)
    // The daemon holds its first requests until the tables and the key are checked.
    let readiness = Task {
      do {
        try await store.ready()
        channel.write(FleetWire.line(.object([("event", .string("ready"))])))
      } catch {}
    }
    let forward = Task {
      for await change in store.changes { channel.write(FleetWire.line(FleetWire.json(change))) }
    }
    let running = Task {
      do {
        try await store.run()
      } catch is CancellationError {
      } catch {
        let failure = (error as? FleetStoreError) ?? FleetStoreError(.unreachable, "\(error)")
        channel.write(
          FleetWire.line(.object([("event", .string("failed")), ("error", FleetWire.json(failure))])))
      }
    }
    // Requests, each answered on its own: a slow statement holds up no other.
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
      DispatchQueue(label: "token-broker-fleet.requests").async {
        while let line = channel.readLine() {
          Task { await answer(line, store: store, channel: channel) }
        }
        done.resume()
      }
    }
    running.cancel()
    forward.cancel()
    readiness.cancel()
    exit(0)
  }

  static func answer(_ line: [UInt8], store: PostgresFleetStore, channel: LineChannel) async {
    guard let request = JSONValue.parse(line), let id = request["id"]?.number, let op = request["op"]?.string
    else { return }
    var reply: [(String, JSONValue)] = [("id", .number(id))]
    do {
      reply.append(("result", try await perform(op, request, store)))
    } catch {
      let failure = (error as? FleetStoreError) ?? FleetStoreError(.unreachable, "\(error)")
      reply.append(("error", FleetWire.json(failure)))
    }
    channel.write(FleetWire.line(.object(reply)))
  }

  static func perform(_ op: String, _ r: JSONValue, _ store: PostgresFleetStore) async throws -> JSONValue {
    let bad = FleetStoreError(.refused, "the fleet helper got a malformed \(op) request")
    switch op {
    case "read":
      guard let key = FleetWire.key(r["key"]) else { throw bad }
      return try await store.read(key).map(FleetWire.json) ?? .null
    case "claim":
      guard let key = FleetWire.key(r["key"]), let node = r["node"]?.string, let lease = r["lease"]?.number
      else { throw bad }
      let version = r["version"]?.number.map { Int64($0) }
      return try await store.claim(key, version: version, node: node, lease: lease).map(FleetWire.json)
        ?? .null
    case "commit":
      guard let claim = FleetWire.claim(r["claim"]), let tokens = FleetWire.tokens(r["tokens"]) else {
        throw bad
      }
      return .bool(try await store.commit(claim, tokens: tokens, seed: r["seed"]?.string))
    case "release":
      guard let claim = FleetWire.claim(r["claim"]) else { throw bad }
      try await store.release(claim)
      return .null
    case "seed":
      guard let key = FleetWire.key(r["key"]), let tokens = FleetWire.tokens(r["tokens"]),
        let seed = r["seed"]?.string, let node = r["node"]?.string
      else { throw bad }
      return .number(Double(try await store.seed(key, tokens: tokens, seed: seed, node: node)))
    case "forget":
      guard let provider = r["provider"]?.string, let node = r["node"]?.string else { throw bad }
      try await store.forget(provider: provider, node: node)
      return .null
    default:
      throw FleetStoreError(.refused, "the fleet helper does not know the request \(op)")
    }
  }
}

/// One line per entry on stderr, with the sd-daemon priority prefix journald reads
/// (`<3>` error ... `<7>` debug), like token-brokerd's own console lines.
struct HelperLogHandler: LogHandler {
  let label: String
  var logLevel: Logger.Level
  var metadata: Logger.Metadata = [:]

  init(label: String, level: Logger.Level) {
    self.label = label
    self.logLevel = level
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let priority: Int
    switch event.level {
    case .trace, .debug: priority = 7
    case .info: priority = 6
    case .notice: priority = 5
    case .warning: priority = 4
    case .error: priority = 3
    case .critical: priority = 2
    }
    var all = metadata
    if let extra = event.metadata { all.merge(extra) { $1 } }
    let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    let text = "<\(priority)>token-broker-fleet: \(event.message)\(fields.isEmpty ? "" : " " + fields)\n"
    standardError(text)
  }
}

/// Writes `text` to descriptor 2 whole.
func standardError(_ text: String) {
  let bytes = Array(text.utf8)
  var done = 0
  while done < bytes.count {
    let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + done, $0.count - done) }
    if n < 0 && errno == EINTR { continue }
    guard n > 0 else { return }
    done += n
  }
}

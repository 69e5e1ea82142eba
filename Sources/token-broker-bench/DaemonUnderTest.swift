import Foundation
import TokenBrokerClient
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// TOML for the daemon under test.
enum BenchConfig {
  /// `[broker]` with the socket and state directory in `dir`, console logs, and `extra` lines.
  static func broker(in dir: TempDirectory, extra: [String] = []) -> String {
    ([
      "[broker]", "socket = \"\(dir.file("b.sock"))\"", "state_dir = \"\(dir.file("state"))\"",
      "log_target = \"console\"",
    ] + extra)
    .joined(separator: "\n") + "\n\n"
  }

  /// A static API key: served as it is, no upstream.
  static func apiKey(_ name: String, key: String) -> String {
    """
    [providers.\(name)]
    grant = "api_key"
    api_key = "\(key)"

    """
  }

  /// An OAuth2 client-credentials provider against the in-process fake upstream (energy
  /// dialect: HTTP Basic, form body).
  static func oauth(_ name: String, _ upstream: FakeUpstream, allowedScopes: [String] = []) -> String {
    let s = upstream.settings
    var lines = [
      "[providers.\(name)]", "token_url = \"\(upstream.tokenURL)\"", "grant = \"client_credentials\"",
      "client_id = \"\(s.clientID)\"", "client_secret = \"\(s.clientSecret)\"",
    ]
    if !allowedScopes.isEmpty {
      lines.append("allowed_scopes = [" + allowedScopes.map { "\"\($0)\"" }.joined(separator: ", ") + "]")
    }
    return lines.joined(separator: "\n") + "\n\n"
  }
}

/// A `token-brokerd` process started the way systemd starts it (`Type=notify`): the bench
/// binds the `$NOTIFY_SOCKET` datagram socket, and start-up time is spawn → `READY=1`.
final class DaemonUnderTest: Sendable {
  let dir: TempDirectory
  let child: ChildProcess
  let notify: NotifyListener
  let socket: String
  /// Seconds from posix_spawn to the `READY=1` datagram.
  let readySeconds: Double

  /// Starts `binary` (the bench's token-brokerd by default) behind `wrapper` (e.g. valgrind).
  static func start(
    _ bench: BenchEnvironment, startupTimeout: Double = 10, label: String = "brokerd", binary: String? = nil,
    wrapper: [String] = [], config: (TempDirectory) -> String
  ) throws -> DaemonUnderTest {
    let dir = try TempDirectory("tbb")
    let configPath = try dir.write("broker.toml", config(dir), mode: 0o600)
    _ = try dir.makeDirectory("state")
    let notify = try NotifyListener(path: dir.file("n.sock"))
    let env = ChildProcess.minimalEnvironment(["NOTIFY_SOCKET": notify.path])
    let argv =
      wrapper + [
        binary ?? bench.brokerd, "--config", configPath, "--startup-timeout", String(startupTimeout),
      ]
    let start = monotonic()
    let child: ChildProcess
    do {
      child = try ChildProcess.start(argv, environment: env, stderr: dir.file("brokerd.stderr"), name: label)
    } catch {
      notify.close()
      throw error
    }
    let ready = (try? notify.wait(for: "READY=1", within: startupTimeout + 60) { !child.isRunning })?.at
    guard let ready else {
      let running = child.isRunning
      child.stop(SIGKILL)
      notify.close()
      throw SetupError(
        "\(label) \(running ? "sent no READY=1" : "exited before READY=1"); its stderr:\n\(child.stderrTail())"
      )
    }
    return DaemonUnderTest(
      dir: dir, child: child, notify: notify, socket: dir.file("b.sock"), readySeconds: ready - start)
  }

  private init(
    dir: TempDirectory, child: ChildProcess, notify: NotifyListener, socket: String, readySeconds: Double
  ) {
    self.dir = dir
    self.child = child
    self.notify = notify
    self.socket = socket
    self.readySeconds = readySeconds
  }

  var pid: pid_t { child.pid }
  /// VmRSS now, KiB.
  func rss() throws -> Int {
    guard let kib = Proc.rssKiB(child.pid) else { throw SetupError("cannot read VmRSS of pid \(child.pid)") }
    return kib
  }

  /// A blocking request over the socket (as tokenctl makes it).
  func get(_ path: String) throws -> UnixHTTPClient.Response {
    var client = UnixHTTPClient(socketPath: socket)
    client.timeout = 30
    do { return try client.request("GET", path) } catch {
      throw SetupError("GET \(path) on \(socket): \(error)")
    }
  }

  /// `GET path` must answer 200; the body.
  func body(_ path: String) throws -> [UInt8] {
    let r = try get(path)
    guard r.status == 200 else { throw SetupError("GET \(path): \(r.status) \(r.text)") }
    return r.body
  }

  /// Sum of `scope_sets` over `GET /v1/status` (cached tokens, default ones included).
  func cachedTokens() throws -> Int {
    let r = try get("/v1/status")
    guard let o = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
      let providers = o["providers"] as? [[String: Any]]
    else { throw SetupError("GET /v1/status: not the expected JSON: \(r.text.prefix(200))") }
    return providers.reduce(0) { $0 + (($1["scope_sets"] as? Int) ?? 0) }
  }

  /// Providers whose state is `ok`, per `GET /v1/status`.
  func providersOK() throws -> (ok: Int, total: Int) {
    let r = try get("/v1/status")
    guard let o = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
      let providers = o["providers"] as? [[String: Any]]
    else { throw SetupError("GET /v1/status: not the expected JSON") }
    return (providers.filter { ($0["state"] as? String) == "ok" }.count, providers.count)
  }

  /// VmRSS with its split, e.g. `34.6 MiB (anon 8.1, file-backed 26.5)`.
  func describeRSS(_ kib: Int) -> String {
    guard let split = Proc.rssSplit(child.pid) else { return Format.mib(kib) }
    return "\(Format.mib(kib)) (anon \(Format.mib(split.anon)), file-backed \(Format.mib(split.file)))"
  }

  /// SIGTERM (graceful stop), SIGKILL after 30 s.
  func stop() {
    let code = child.stop(SIGTERM, within: 30)
    if code != 0 { note("\(child.name) exited \(code) on SIGTERM; stderr:\n\(child.stderrTail())") }
    notify.close()
  }
}

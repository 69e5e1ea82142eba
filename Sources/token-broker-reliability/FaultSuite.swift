import Foundation
import TokenBrokerClient
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// A sweep of upstream faults against the real daemon holding a valid token: after each,
/// the daemon is alive, answers no 5xx but 503, serves the token it holds, and recovers.
/// Then hostile-but-well-formed upstream values and config values, each on a fresh daemon,
/// which must not bring it down.
final class FaultSuite {
  struct Outcome {
    var name: String
    var passed: Bool
    var detail: String
  }

  var daemonPath: String?
  var keep = false

  func run() throws -> [Outcome] {
    let daemonPath = try self.daemonPath ?? BuiltBinaries.path("token-brokerd")
    var out: [Outcome] = []
    let sweep: [(String, FakeUpstream.Fault)] = [
      ("500", .status(500, body: "oops")),
      ("503 with Retry-After", .status(503, headers: ["Retry-After": "5"])),
      (
        "429 with Retry-After",
        .status(429, body: #"{"error":"rate_limited"}"#, headers: ["Retry-After": "120"])
      ),
      ("stall past request_timeout", .stall),
      ("slow body past request_timeout", .slowBody(interval: 0.5)),
      ("10 MB body", .oversized(10_000_000)),
      ("malformed JSON", .malformedJSON),
      ("redirect", .redirect(to: "https://elsewhere.example.com/token")),
      ("invalid_client", .invalidClient),
      ("200 with expires_in \"soon\"", .status(200, body: #"{"access_token":"x","expires_in":"soon"}"#)),
    ]
    try withDaemon(daemonPath, minValid: 30) { upstream, api, daemon, _ in
      for (name, fault) in sweep {
        let before = try self.token(api)
        upstream.failNext(fault)
        let r = try? api.request("POST", "/v1/providers/energy/refresh", timeout: 20)
        var problems: [String] = []
        if daemon.hasExited { problems.append("the daemon died (\(daemon.exitDescription))") }
        if let r, r.status >= 500 { problems.append("refresh answered \(r.status)") }
        let state = api.state(of: "energy")
        if state != "degraded" { problems.append("state \(state ?? "unreachable"), not degraded") }
        if (try? self.token(api)) != before { problems.append("the valid token was not served") }
        // Recovery: the next refresh succeeds.
        let ok = try? api.request("POST", "/v1/providers/energy/refresh", timeout: 20)
        if ok?.status != 200 || api.state(of: "energy") != "ok" { problems.append("no recovery") }
        out.append(
          Outcome(name: "fault: \(name)", passed: problems.isEmpty, detail: problems.joined(separator: "; ")))
        if daemon.hasExited { break }
      }
      return
    }

    // Well-formed but extreme values from the upstream: each on a fresh daemon.
    let hostile: [(String, FakeUpstream.Fault, [String])] = [
      (
        "200 with expires_in 1e300", .status(200, body: #"{"access_token":"at_far","expires_in":1e300}"#),
        ["/v1/status", "/v1/token/energy"]
      ),
      (
        "200 with created_at -1e300", .status(200, body: #"{"access_token":"at_old","created_at":-1e300}"#),
        ["/v1/status", "/v1/token/energy"]
      ),
      (
        "429 invalid_client with Retry-After 9223372036854775807",
        .status(429, body: #"{"error":"invalid_client"}"#, headers: ["Retry-After": "9223372036854775807"]),
        ["/v1/status", "/v1/token/energy?min_valid=86400", "/metrics"]
      ),
    ]
    for (name, fault, paths) in hostile {
      try withDaemon(daemonPath, minValid: 30) { upstream, api, daemon, _ in
        upstream.failNext(fault)
        _ = try? api.request("POST", "/v1/providers/energy/refresh", timeout: 20)
        var problems: [String] = []
        for p in paths {
          let r = try? api.request("GET", p, timeout: 10)
          if let r, r.status >= 500, r.status != 503 { problems.append("GET \(p) answered \(r.status)") }
          if r == nil { problems.append("GET \(p) got no answer") }
        }
        sleepMilliseconds(200)
        if daemon.hasExited {
          problems.append("the daemon died (\(daemon.exitDescription)): \(self.crashSite(daemon))")
        }
        out.append(
          Outcome(
            name: "upstream: \(name)", passed: problems.isEmpty, detail: problems.joined(separator: "; ")))
      }
    }
    // An extreme min_valid in the config: refused with exit 78 and the line, nothing started.
    do {
      let dir = try TempDirectory.make("tbr-faults-config")
      defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
      var config = DaemonConfig(socket: dir + "/s", stateDir: dir + "/state")
      config.providers = ["[providers.keys]\ngrant = \"api_key\"\napi_key = \"k_0123456789\""]
      let text = config.text.replacingOccurrences(of: "min_valid = 0\n", with: "min_valid = 1e19\n")
      try TempDirectory.write(dir + "/broker.toml", text)
      let check = try runToEnd(daemonPath, ["--check-config", "--config", dir + "/broker.toml"])
      let said = check.stdout + check.stderr
      var problems: [String] = []
      if check.status != 78 {
        problems.append("--check-config exited \(check.status), not 78")
      }
      if !said.contains("broker.min_valid: must be between 0 and 86400 seconds") {
        problems.append("no clear message: \(said.prefix(300))")
      }
      out.append(
        Outcome(
          name: "config: min_valid = 1e19 refused", passed: problems.isEmpty,
          detail: problems.joined(separator: "; ")))
    }
    // A reload (SIGHUP) of a config with a typo: the old config must stay in force.
    for (name, typo) in [("x = [\"\",}", "an array closed with }"), ("[é]", "a table named [é]")] {
      try withDaemon(daemonPath, minValid: 30) { _, api, daemon, configPath in
        let text = (try? String(contentsOfFile: configPath, encoding: .utf8)) ?? ""
        try TempDirectory.write(configPath, text + "\n" + name + "\n")
        kill(daemon.pid, SIGHUP)
        // A refused reload logs and carries on; an abort takes the backtracer a few seconds.
        let deadline = monotonic() + 8
        while !daemon.hasExited && monotonic() < deadline { sleepMilliseconds(50) }
        var problems: [String] = []
        if daemon.hasExited {
          problems.append("the daemon died (\(daemon.exitDescription)): \(self.assertionSite(daemon))")
        } else if api.state(of: "energy") != "ok" {
          problems.append("the old config is not in force")
        }
        out.append(
          Outcome(
            name: "reload: config with \(typo)", passed: problems.isEmpty,
            detail: problems.joined(separator: "; ")))
      }
    }
    return out
  }

  /// The assertion line of an aborted daemon, if it logged one.
  func assertionSite(_ daemon: DaemonProcess) -> String {
    daemon.logTail(10_000).split(separator: "\n").first { $0.contains("Assertion") }
      .map { String($0.split(separator: "/").suffix(2).joined(separator: "/")) } ?? "see its log"
  }

  /// The Swift runtime's "Fatal error" line of a crashed daemon, if it logged one.
  func crashSite(_ daemon: DaemonProcess) -> String {
    let log = daemon.logTail(10_000).split(separator: "\n")
    let fatal = log.first { $0.contains("Fatal error") || $0.contains("fatal error") }.map(String.init)
    // The backtracer's first frame in the daemon's own sources.
    let frame = log.first { $0.contains("/Sources/TokenBroker") && $0.contains(".swift:") }
      .map { String($0.split(separator: " at ").last ?? $0) }
    return [fatal, frame].compactMap { $0 }.joined(separator: " at ").nilIfEmpty ?? "see its log"
  }

  func token(_ api: SocketAPIClient) throws -> String {
    var client = UnixHTTPClient(socketPath: api.socketPath)
    client.timeout = 10
    let r = try client.request("GET", "/v1/token/energy", accept: "text/plain")
    guard r.status == 200 else { throw SetupError("GET /v1/token/energy answered \(r.status)") }
    return r.text
  }

  func withDaemon(
    _ daemonPath: String, minValid: Int?, extraBroker: String = "",
    _ body: (FakeUpstream, SocketAPIClient, DaemonProcess, String) throws -> Void
  ) throws {
    let dir = try TempDirectory.make("tbr-faults")
    defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try Blocking.wait { try await upstream.start() }
    defer { Blocking.waitQuietly { await upstream.stop() } }
    var config = DaemonConfig(socket: dir + "/s", stateDir: dir + "/state")
    config.requestTimeout = 2
    config.minValid = minValid ?? 0
    config.providers = [
      """
      [providers.energy]
      token_url = "\(upstream.tokenURL)"
      grant = "client_credentials"
      client_id = "\(upstream.settings.clientID)"
      client_secret = "\(upstream.settings.clientSecret)"
      """
    ]
    var text = config.text
    if minValid == nil {
      text = text.replacingOccurrences(of: "min_valid = 0\n", with: extraBroker + "\n")
    }
    try TempDirectory.write(dir + "/broker.toml", text)
    let daemon = DaemonProcess(
      executable: daemonPath, arguments: ["--config", dir + "/broker.toml"], logPath: dir + "/daemon.log")
    try daemon.start()
    defer { daemon.kill9() }
    let api = SocketAPIClient(socketPath: config.socket)
    _ = try api.waitSettled("energy", daemon: daemon, timeout: 30)
    try body(upstream, api, daemon, dir + "/broker.toml")
  }
}

extension String {
  fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}

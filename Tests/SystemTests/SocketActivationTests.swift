import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// The daemon as systemd runs it: socket-activated (`systemd-socket-activate`), with
  /// `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and stderr as "the journal" (`$JOURNAL_STREAM`).
  @Suite("Under systemd") struct SocketActivationTests {
    static var canRun: Bool {
      JournaldFixture.isAvailable && access(socketActivatePath, X_OK) == 0
    }

    @Test(.enabled(if: canRun, "needs root, systemd-journald, journalctl and systemd-socket-activate"))
    func notifyReloadWatchdogJournalAndStop() async throws {
      try JournaldFixture.ensureRunning()
      let since = Date().timeIntervalSince1970 - 1
      let dir = try TempDirectory("tbst")
      let upstream = try await startUpstream()
      defer { Task { await upstream.stop() } }
      let secret = upstream.settings.clientSecret
      let alpha = "alpha-\(uniqueSuffix())"
      let beta = "beta-\(uniqueSuffix())"
      try dir.write("beta-secret", secret + "\n")
      let broker = brokerTable([
        "socket = \"\(dir.file("configured.sock"))\"",
        "state_dir = \"\(dir.file("state"))\"",
        // --log-level debug on the command line wins over this.
        "log_level = \"error\"",
        "log_target = \"auto\"",
      ])
      func config(beta betaExtra: [String], broken: Bool = false) -> String {
        broker
          + energyProvider(alpha, upstream, secret: "\"\(secret)\"", extra: broken ? ["grnat = \"x\""] : [])
          + "\n"
          + energyProvider(
            beta, upstream, secret: "{ file = \"\(dir.file("beta-secret"))\" }", extra: betaExtra)
      }
      let configPath = try dir.write("broker.toml", config(beta: []))

      let notify = try NotifyListener(path: dir.file("notify"))
      let socketPath = dir.file("activated.sock")
      let daemon = try ChildProcess(
        socketActivatePath,
        [
          "--listen=\(socketPath)",
          "-E", "NOTIFY_SOCKET=\(notify.path)",
          "-E", "WATCHDOG_USEC=2000000",
          "-E", "SWIFT_BACKTRACE=enable=no",
          "-E", "JOURNAL_STREAM",
          try BuiltBinaries.tokenBrokerd, "--config", configPath, "--log-level", "debug",
        ],
        outputIn: dir, name: "daemon")
      daemon.environment["JOURNAL_STREAM"] = try daemon.stderrDeviceAndInode
      try daemon.start()
      let pid = daemon.pid

      // systemd-socket-activate execs the daemon on the first connection, which then waits in
      // the inherited socket's backlog until the daemon answers it.
      let client = BrokerClient(socketPath: socketPath)
      try await offload { try poll("\(socketPath) to exist") { fileStatus(socketPath) != nil } }
      let firstRequest = Task { try await client.request("GET", "/v1/status") }

      // READY=1 once both providers had their first attempt; STATUS= says so.
      try await offload { try notify.wait(for: "READY=1") }
      try await offload { try notify.waitForStatus("2/2 providers ok") { $0.hasPrefix("2/2 providers ok") } }
      #expect(daemon.isRunning)
      // The inherited socket is used: the configured path is never bound.
      #expect(fileStatus(dir.file("configured.sock")) == nil)

      #expect(try await firstRequest.value.status == 200)
      var alphaToken = try await client.token(alpha)
      let betaToken = try await client.token(beta)
      #expect(upstream.issuedAccessTokens.contains(alphaToken))
      #expect(upstream.issuedAccessTokens.contains(betaToken))

      // WATCHDOG=1 at half of WATCHDOG_USEC (2 s): two pings.
      let firstPing = try await offload { try notify.wait(for: "WATCHDOG=1") }
      try await offload { try notify.wait(for: "WATCHDOG=1", from: firstPing.index + 1) }

      // STATUS= follows a state change when it happens (no polling): a failed refresh of alpha
      // is counted with the time of the next attempt; the line (world-readable) names no
      // provider and quotes no upstream text.
      let beforeFault = notify.all.count
      upstream.failNext(.status(503, headers: ["Retry-After": "30"]))
      #expect(try await client.request("POST", "/v1/providers/\(alpha)/refresh").status == 200)
      let degraded = try await offload {
        try notify.waitForStatus(from: beforeFault, "1 degraded") {
          $0.contains("; 1 degraded (next attempt 20")
        }
      }
      #expect(degraded.status.hasPrefix("1/2 providers ok"), "\(degraded.status)")
      #expect(!degraded.status.contains(alpha) && !degraded.status.contains("503"), "\(degraded.status)")
      #expect(try await client.request("POST", "/v1/providers/\(alpha)/refresh").status == 200)
      try await offload {
        try notify.waitForStatus(from: degraded.index + 1, "2/2 providers ok again") {
          $0.hasPrefix("2/2 providers ok")
        }
      }
      alphaToken = try await client.token(alpha)
      #expect(upstream.issuedAccessTokens.contains(alphaToken))

      // A valid reload on SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1; beta changed
      // (a new token request parameter) and is refetched, alpha keeps its token.
      try dir.write("broker.toml", config(beta: ["params = { audience = \"v2\" }"]))
      let beforeHUP = notify.all.count
      daemon.send(SIGHUP)
      let reloading = try await offload { try notify.wait(for: "RELOADING=1", from: beforeHUP) }
      #expect(NotifyListener.has(reloading.message, "MONOTONIC_USEC="))
      let usec = reloading.message.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }
      #expect(usec.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) } != nil)
      try await offload { try notify.wait(for: "READY=1", from: reloading.index + 1) }
      #expect(try await client.token(alpha) == alphaToken)
      let betaAfter = try await client.token(beta)
      #expect(betaAfter != betaToken)
      #expect(upstream.requests.contains { $0.form["audience"] == "v2" })

      // A broken config over POST /v1/reload: 400 with the problems; the old config stays.
      let brokenText = config(beta: [], broken: true)
      let brokenLine =
        try #require(
          brokenText.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
            $0.hasPrefix("grnat")
          }) + 1
      try dir.write("broker.toml", brokenText)
      let beforeRefused = notify.all.count
      let refused = try await client.request("POST", "/v1/reload")
      #expect(refused.status == 400, "\(refused.text)")
      let error = try client.json(refused)["error"] as? [String: Any]
      #expect(error?["code"] as? String == "invalid_config")
      let problems = error?["problems"] as? [String] ?? []
      #expect(problems.count == 1, "\(problems)")
      #expect(
        problems.first?.hasPrefix("\(configPath):\(brokenLine): providers.\(alpha).grnat: unknown key")
          == true)
      try await offload {
        try notify.waitForStatus(from: beforeRefused, "naming the refused reload") {
          $0.contains("reload refused")
        }
      }
      #expect(try await client.token(alpha) == alphaToken)
      #expect(try await client.token(beta) == betaAfter, "the refused config dropped beta's params")
      let status = try client.json(try await client.request("GET", "/v1/status"))
      let names = (status["providers"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
      #expect(Set(names) == [alpha, beta])

      // SIGTERM: STOPPING=1, exit 0.
      let beforeTERM = notify.all.count
      daemon.send(SIGTERM)
      try await offload { try notify.wait(for: "STOPPING=1", from: beforeTERM) }
      #expect(try await offload { try daemon.waitForExit() } == 0, "stderr: \(daemon.stderr)")

      // The journal has the daemon's structured entries (stderr was "the journal").
      let mine = ["_PID=\(pid)", "SYSLOG_IDENTIFIER=token-brokerd"]
      let all = try await offload {
        try JournaldFixture.entries(matching: mine, since: since, "the stop") {
          $0.contains { $0["TOKEN_BROKER_EVENT"] == "stopped" }
        }
      }
      func first(_ event: String, provider: String? = nil) -> JournaldFixture.Entry? {
        all.first { e in
          e["TOKEN_BROKER_EVENT"] == event && (provider == nil || e["TOKEN_BROKER_PROVIDER"] == provider)
        }
      }
      let refreshed = try #require(first("refreshed", provider: alpha), "no refreshed entry for \(alpha)")
      #expect(refreshed["MESSAGE"] == "token refreshed")
      #expect(refreshed["PRIORITY"] == "6")
      #expect(refreshed["MESSAGE_ID"] == "acfc5bac1cf04087b04d131567e37984")
      #expect(refreshed["CODE_FILE"]?.hasSuffix(".swift") == true)
      #expect(refreshed["CODE_LINE"].flatMap { Int($0) } != nil)
      #expect(refreshed["CODE_FUNC"]?.isEmpty == false)
      #expect(refreshed["TOKEN_BROKER_REQUEST_ID"]?.count == 16)
      let served = try #require(first("served", provider: alpha), "no served entry for \(alpha)")
      #expect(served["PRIORITY"] == "7", "--log-level debug overrides log_level = error")
      #expect(served["MESSAGE_ID"] == "e6343ca70e2f41449d19050476d60a65")
      #expect(served["TOKEN_BROKER_CALLER_UID"] == String(getuid()))
      #expect(served["TOKEN_BROKER_CALLER_PID"] == String(getpid()))
      #expect(first("started")?["MESSAGE_ID"] == "4b85d885c4ab4497b4948985601f0137")
      #expect(first("reloaded")?["MESSAGE_ID"] == "333380a1a59646afae3857eb05e7f48d")
      #expect(first("reloaded")?["MESSAGE"]?.contains("1 changed (\(beta))") == true)
      let failed = all.filter { $0["TOKEN_BROKER_EVENT"] == "reload_failed" }
      #expect(failed.first?["MESSAGE_ID"] == "e7c8bc9b46dc4becbdf66a2f0ac8d689")
      #expect(failed.contains { $0["MESSAGE"]?.hasPrefix("\(configPath):\(brokenLine): ") == true })
      #expect(first("stopping")?["MESSAGE_ID"] == "0e6564a05ac94836ba2af9e3f4b53c6b")

      // No token and no secret anywhere in the journal.
      let everything = try await offload { try JournaldFixture.query([], since: since) }
      let secrets = [secret] + upstream.issuedAccessTokens
      let leaks = everything.flatMap { entry in
        entry.fields.flatMap { name, values in
          values.filter { v in secrets.contains { v.contains($0) } }.map { "\(name)=\($0)" }
        }
      }
      #expect(leaks.isEmpty)
      // With stderr the journal, the messages went natively, not as text lines.
      #expect(!daemon.stderr.contains("token refreshed"), "\(daemon.stderr)")
    }
  }
}

import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// The daemon started by hand (no socket activation): binding its socket, a graceful stop
  /// with requests in flight, and READY=1 bounded by the start-up timeout.
  @Suite("Life cycle") struct LifecycleTests {
    /// Binds the configured path (a stale socket file is replaced; mode 0660; `socket_group`),
    /// logs `<N>` lines on stderr; SIGTERM with a request in flight: the request is answered,
    /// the rotated refresh token it brought is persisted, the socket removed, exit 0.
    @Test(.enabled(if: someGroup() != nil, "needs a group other than root's"))
    func boundSocketAndGracefulStop() async throws {
      let dir = try TempDirectory("tbst")
      let group = try #require(someGroup())
      let energy = try await startUpstream(.energy)
      let powerverse = try await startUpstream(.powerverse)
      defer {
        Task {
          await energy.stop()
          await powerverse.stop()
        }
      }
      let socketPath = dir.file("b.sock")
      // A stale socket: bound once, nobody listening.
      close(try UnixSocketAddress.boundSocket(type: Int32(SOCK_STREAM.rawValue), path: socketPath))
      try #require(fileStatus(socketPath) != nil, "cannot make a stale socket")

      let config = try dir.write(
        "broker.toml",
        brokerTable([
          "socket = \"\(socketPath)\"",
          "socket_group = \"\(group.name)\"",
          "state_dir = \"\(dir.file("state"))\"",
          "log_target = \"console\"",
        ])
          + energyProvider("energy", energy, secret: "\"\(energy.settings.clientSecret)\"") + "\n"
          + powerverseProvider("pv", powerverse))
      let notify = try NotifyListener(path: dir.file("notify"))
      let daemon = try ChildProcess(
        try BuiltBinaries.tokenBrokerd, ["--config", config], environment: ["NOTIFY_SOCKET": notify.path],
        outputIn: dir, name: "daemon")
      try daemon.start()
      try await offload { try notify.wait(for: "READY=1") }

      let info = try #require(fileStatus(socketPath))
      #expect(info.st_mode & S_IFMT == S_IFSOCK)
      #expect(info.st_mode & 0o777 == 0o660)
      #expect(info.st_gid == group.gid)
      let client = BrokerClient(socketPath: socketPath)
      let token = try await client.token("energy")
      #expect(energy.issuedAccessTokens.contains(token))
      _ = try await client.token("pv")

      // A refresh whose upstream answers late is in flight when SIGTERM comes.
      let before = powerverse.requestCount
      powerverse.failNext(.delayed(1))
      let inFlight = Task { try await client.request("POST", "/v1/providers/pv/refresh") }
      try await offload { try poll("the refresh to reach the upstream") { powerverse.requestCount > before } }
      let mark = notify.all.count
      daemon.send(SIGTERM)
      try await offload { try notify.wait(for: "STOPPING=1", from: mark) }
      let answer = try await inFlight.value
      #expect(answer.status == 200, "\(answer.text)")
      #expect((try client.json(answer))["state"] as? String == "ok")
      #expect(try await offload { try daemon.waitForExit() } == 0, "stderr: \(daemon.stderr)")

      // The refresh token of that last answer was persisted before the daemon exited.
      let latest = try #require(powerverse.issuedRefreshTokens.last)
      let state = try String(contentsOfFile: dir.file("state/pv.state"), encoding: .utf8)
      #expect(state.contains(latest))
      #expect(fileStatus(socketPath) == nil, "the socket is removed on stop")

      // Console: one `<N>message key=value` line per message.
      let lines = daemon.stderr.split(separator: "\n")
      #expect(lines.contains { $0.hasPrefix("<6>listening on \(socketPath)") })
      #expect(lines.contains { $0.hasPrefix("<5>stopping") })
      #expect(
        lines.allSatisfy { $0.first == "<" && $0.dropFirst().first?.isNumber == true }, "\(daemon.stderr)")
      #expect(!daemon.stderr.contains(token))
    }

    /// One provider never answers: READY=1 comes at the start-up timeout anyway, and STATUS=
    /// follows the provider from refreshing to failed without any reload.
    /// Started with systemd's default soft open-file limit (1024), the daemon raises it to fit
    /// its 4096 connections (+256 for its own files), within the hard limit.
    @Test func openFileLimitRaisedForMaxConnections() async throws {
      let dir = try TempDirectory("tbst")
      let upstream = try await startUpstream(.energy)
      defer { Task { await upstream.stop() } }
      let config = try dir.write(
        "broker.toml",
        brokerTable(["socket = \"\(dir.file("s.sock"))\"", "state_dir = \"\(dir.file("state"))\""])
          + energyProvider("p", upstream, secret: "\"\(upstream.settings.clientSecret)\""))
      let notify = try NotifyListener(path: dir.file("notify"))
      // prlimit sets the limits and execs the daemon: same pid.
      let daemon = try ChildProcess(
        "/usr/bin/prlimit", ["--nofile=1024:8192", try BuiltBinaries.tokenBrokerd, "--config", config],
        environment: ["NOTIFY_SOCKET": notify.path], outputIn: dir, name: "daemon")
      try daemon.start()
      try await offload { try notify.wait(for: "READY=1") }
      let limits = try String(contentsOfFile: "/proc/\(daemon.pid)/limits", encoding: .utf8)
      let line = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }
      let numbers = line?.split(separator: " ").compactMap { Int($0) } ?? []
      #expect(numbers == [4352, 8192], "\(line ?? "no Max open files line")")
      daemon.send(SIGTERM)
      #expect(try await offload { try daemon.waitForExit() } == 0, "stderr: \(daemon.stderr)")
    }

    @Test func readyAtTheStartupTimeoutAndStatusKeptCurrent() async throws {
      let dir = try TempDirectory("tbst")
      let good = try await startUpstream(.energy)
      let silent = try await startUpstream(.energy)
      silent.failAlways(.stall)
      defer {
        Task {
          await good.stop()
          await silent.stop()
        }
      }
      let config = try dir.write(
        "broker.toml",
        brokerTable([
          "socket = \"\(dir.file("s.sock"))\"",
          "state_dir = \"\(dir.file("state"))\"",
          "request_timeout = 4",
        ])
          + energyProvider("good", good, secret: "\"\(good.settings.clientSecret)\"") + "\n"
          + energyProvider("silent", silent, secret: "\"\(silent.settings.clientSecret)\""))
      let notify = try NotifyListener(path: dir.file("notify"))
      let daemon = try ChildProcess(
        try BuiltBinaries.tokenBrokerd, ["--config", config, "--startup-timeout", "1"],
        environment: ["NOTIFY_SOCKET": notify.path], outputIn: dir, name: "daemon")
      try daemon.start()

      let starting = try await offload { try notify.waitForStatus("starting") { $0.hasPrefix("starting") } }
      let ready = try await offload { try notify.wait(for: "READY=1") }
      #expect(starting.index < ready.index)
      // At READY the silent provider's first request is still open: it only ends at
      // request_timeout (4 s), well after the start-up timeout (1 s).
      let atReady = try await offload {
        try notify.waitForStatus(from: ready.index, "after READY") { $0.hasPrefix("1/2 providers ok") }
      }
      #expect(atReady.status.contains("1 refreshing"), "\(atReady.status)")
      #expect(!atReady.status.contains("silent"), "STATUS= names no provider: \(atReady.status)")
      try await offload {
        try notify.waitForStatus(from: ready.index, "with silent failed") {
          $0.hasPrefix("1/2 providers ok") && $0.contains("1 failed")
        }
      }
      let mark = notify.all.count
      daemon.send(SIGTERM)
      try await offload { try notify.wait(for: "STOPPING=1", from: mark) }
      #expect(try await offload { try daemon.waitForExit() } == 0, "stderr: \(daemon.stderr)")
      #expect(daemon.stderr.contains("still waiting for silent"))
    }
  }
}

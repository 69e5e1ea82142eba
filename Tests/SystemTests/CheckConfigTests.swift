import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// `token-brokerd --check-config` and a start refused for the same problems.
  @Suite("Configuration check") struct CheckConfigTests {
    static let broken = """
      [broker]
      socket = "/tmp/tb-unused.sock"
      refresh_att = 0.5

      [providers.alpha]
      token_url = "https://example.com/token"
      grant = "client_credentials"
      client_id = "id"
      client_secret = "literal-secret"
      client_secert = "typo"

      """

    /// The `PATH:LINE: message` lines of `output`.
    static func problemLines(_ output: String, path: String) -> [String] {
      output.split(separator: "\n").map(String.init).filter { $0.hasPrefix(path + ":") }
    }

    /// `[fleet]` on a server without the token-broker-fleet package: refused at start (78) with
    /// what to install, not a helper restarted forever.
    @Test func aFleetWithoutItsHelperIsRefusedWithWhatToInstall() throws {
      let dir = try TempDirectory("tbst")
      let alone = dir.file("token-brokerd")
      try FileManager.default.copyItem(atPath: try BuiltBinaries.tokenBrokerd, toPath: alone)
      let (dsn, key) = try FleetConfig.writeSecrets(dsn: "postgresql://tb@127.0.0.1:1/tb", in: dir)
      let config = try dir.write(
        "broker.toml",
        "[broker]\nsocket = \"\(dir.file("b.sock"))\"\nstate_dir = \"\(dir.file("state"))\"\n\n"
          + FleetConfig.table(dsnFile: dsn, keyFile: key, node: "n1"),
        mode: 0o600)
      _ = try dir.makeDirectory("state")
      let result = try runToEnd(alone, ["--config", config, "--log-target", "console"], within: 30)
      #expect(result.status == 78, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
      #expect(
        result.stderr.contains("install the token-broker-fleet package (or remove [fleet])"),
        "\(result.stderr)")
      #expect(fileStatus(dir.file("b.sock")) == nil)
      // --check-config says the same, as a problem of the file.
      let checked = try runToEnd(alone, ["--check-config", "--config", config], within: 30)
      #expect(checked.status == 78, "\(checked.stdout)\(checked.stderr)")
      #expect(
        (checked.stdout + checked.stderr).contains("\(config): [fleet] needs the fleet helper"),
        "\(checked.stdout)\(checked.stderr)")
    }

    @Test func brokenFileExits78WithPathLineMessages() throws {
      let dir = try TempDirectory("tbst")
      let config = try dir.write("broker.toml", Self.broken)
      let result = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--check-config", "--config", config])
      #expect(result.status == 78, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
      let lines = Self.problemLines(result.stdout + result.stderr, path: config)
      #expect(
        lines == [
          "\(config):3: broker.refresh_att: unknown key; did you mean 'refresh_at'?",
          "\(config):10: providers.alpha.client_secert: unknown key; did you mean 'client_secret'?",
        ])
      #expect(!(result.stdout + result.stderr).contains("literal-secret"))
    }

    @Test func daemonRefusesToStartWithTheSameMessages() throws {
      let dir = try TempDirectory("tbst")
      let config = try dir.write("broker.toml", Self.broken)
      let check = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--check-config", "--config", config])
      let notify = try NotifyListener(path: dir.file("notify"))
      let start = try runToEnd(
        try BuiltBinaries.tokenBrokerd, ["--config", config], environment: ["NOTIFY_SOCKET": notify.path])
      #expect(start.status == 78, "stderr: \(start.stderr)")
      let expected = Self.problemLines(check.stdout + check.stderr, path: config)
      #expect(expected.count == 2)
      #expect(Self.problemLines(start.stdout + start.stderr, path: config) == expected)
      #expect(start.stderr.contains("nothing was started"))
      // A refused start never told systemd it was ready.
      #expect(!notify.assignments.contains("READY=1"))
    }

    /// In a user namespace that remaps uids (PrivateUsers=, containers) every peer would read
    /// as nobody: the daemon refuses to start and says why.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")))
    func refusesAUserNamespaceWhoseUIDMapIsNotTheIdentity() throws {
      let dir = try TempDirectory("tbst")
      let config = try dir.write(
        "broker.toml",
        """
        [broker]
        socket = "\(dir.file("s.sock"))"
        state_dir = "\(dir.file("state"))"

        [providers.key]
        grant = "api_key"
        api_key = "ak_test_ns"

        """)
      let result = try runToEnd(
        "/usr/bin/unshare", ["--user", "--map-root-user", try BuiltBinaries.tokenBrokerd, "--config", config])
      #expect(result.status == 1, "stderr: \(result.stderr)")
      #expect(result.stderr.contains("uid map is not the identity"), "\(result.stderr)")
      #expect(access(dir.file("s.sock"), F_OK) != 0)
    }

    @Test func goodFileExits0() throws {
      let dir = try TempDirectory("tbst")
      let config = try dir.write(
        "broker.toml",
        """
        [broker]
        socket = "\(dir.file("s.sock"))"

        [providers.alpha]
        token_url = "https://example.com/token"
        grant = "client_credentials"
        client_id = "id"
        client_secret = { file = "\(dir.file("secret"))" }

        """)
      try dir.write("secret", "from-a-file\n")
      let result = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--check-config", "--config", config])
      #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
      #expect(Self.problemLines(result.stderr, path: config).isEmpty, "\(result.stderr)")
      #expect(result.stdout == "\(config): ok (1 providers)\n")
    }

    /// Problems found after parsing (a secret file that is missing, a group that does not
    /// exist) are located by line too, and stop the daemon from starting.
    @Test func missingSecretAndUnknownSocketGroupAreProblems() throws {
      let dir = try TempDirectory("tbst")
      let group = "tb-no-such-group-\(uniqueSuffix().prefix(6))"
      let config = try dir.write(
        "broker.toml",
        """
        [broker]
        socket = "\(dir.file("s.sock"))"
        socket_group = "\(group)"

        [providers.alpha]
        token_url = "https://example.com/token"
        grant = "client_credentials"
        client_id = "id"
        client_secret = { file = "\(dir.file("missing"))" }

        """)
      let check = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--check-config", "--config", config])
      #expect(check.status == 78, "stderr: \(check.stderr)")
      let lines = Self.problemLines(check.stderr, path: config)
      #expect(lines.count == 2, "\(check.stderr)")
      #expect(lines.contains { $0.hasPrefix("\(config):3: broker.socket_group: no group named \(group)") })
      #expect(lines.contains { $0.hasPrefix("\(config):9: providers.alpha.client_secret") })
      let start = try runToEnd(try BuiltBinaries.tokenBrokerd, ["--config", config])
      #expect(start.status == 78)
      #expect(Self.problemLines(start.stderr, path: config) == lines)
      #expect(fileStatus(dir.file("s.sock")) == nil, "a refused start must not bind the socket")
    }
  }
}

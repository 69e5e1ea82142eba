import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

/// The files in `systemd/` at the repository root, found from this source file.
enum UnitFiles {
  static let directory: String = {
    let resolved = realpath(#filePath, nil).map { pointer -> String in
      defer { free(pointer) }
      return String(cString: pointer)
    }
    return URL(fileURLWithPath: resolved ?? #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("systemd").path
  }()

  static let analyzer = "/usr/bin/systemd-analyze"
  static var analyzerAvailable: Bool { access(analyzer, X_OK) == 0 }
  static var sysusersAndTmpfilesAvailable: Bool {
    access("/usr/bin/systemd-sysusers", X_OK) == 0 && access("/usr/bin/systemd-tmpfiles", X_OK) == 0
  }

  static func path(_ name: String) -> String { directory + "/" + name }

  static func text(_ name: String) throws -> String {
    try String(contentsOfFile: path(name), encoding: .utf8)
  }

  /// `KEY=value` lines of a unit (comments skipped), in order; repeated keys repeat.
  static func settings(_ name: String) throws -> [(key: String, value: String)] {
    try text(name).split(separator: "\n").compactMap { line in
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      guard !trimmed.hasPrefix("#"), !trimmed.hasPrefix(";"), let equals = trimmed.firstIndex(of: "=")
      else { return nil }
      return (String(trimmed[..<equals]), String(trimmed[trimmed.index(after: equals)...]))
    }
  }

  static func values(_ key: String, in name: String) throws -> [String] {
    try settings(name).filter { $0.key == key }.map(\.value)
  }

  /// Runs a program, on a thread of its own (off the cooperative pool, which the other
  /// suites' brokers need); returns its exit status and everything it printed (stdout, then
  /// stderr).
  static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String)
  {
    let result = try await offload { try runToEnd(executable, arguments, environment: ["SYSTEMD_PAGER": ""]) }
    return (result.status, result.stdout + result.stderr)
  }
}

extension SystemdSuite {
  @Suite("Unit files") struct UnitFileTests {
    /// `verify` checks that ExecStart= exists, and /usr/bin/token-brokerd is not installed
    /// here: verify a copy that runs /bin/true instead, as systemd/check-units.sh does.
    @Test(.enabled(if: UnitFiles.analyzerAvailable, "systemd-analyze is not installed"))
    func verifyPrintsNothing() async throws {
      let directory = try TempDirectory("tbsd")
      for name in ["token-broker.service", "token-broker.socket"] {
        let text = try UnitFiles.text(name).replacingOccurrences(
          of: "\nExecStart=/usr/bin/token-brokerd ", with: "\nExecStart=/bin/true ")
        try text.write(toFile: directory.path + "/" + name, atomically: false, encoding: .utf8)
      }
      let result = try await UnitFiles.run(
        UnitFiles.analyzer,
        ["verify", directory.path + "/token-broker.service", directory.path + "/token-broker.socket"])
      #expect(result.status == 0)
      #expect(result.output == "", "systemd-analyze verify must print nothing")
    }

    @Test(.enabled(if: UnitFiles.analyzerAvailable, "systemd-analyze is not installed"))
    func securityExposureIsAtMostOnePointFive() async throws {
      let result = try await UnitFiles.run(
        UnitFiles.analyzer,
        ["security", "--offline=true", "--no-pager", UnitFiles.path("token-broker.service")])
      #expect(result.status == 0)
      let marker = "Overall exposure level for token-broker.service: "
      let line = try #require(result.output.split(separator: "\n").first { $0.contains(marker) })
      let score = line.components(separatedBy: marker).last?.split(separator: " ").first
      let exposure = try #require(score.flatMap { Double($0) }, "no exposure in: \(line)")
      #expect(exposure <= 1.5, "\(result.output)")
    }

    @Test(
      .enabled(
        if: UnitFiles.analyzerAvailable && UnitFiles.sysusersAndTmpfilesAvailable,
        "systemd-analyze, systemd-sysusers or systemd-tmpfiles is not installed"))
    func checkUnitsScriptPasses() async throws {
      let result = try await UnitFiles.run("/bin/sh", [UnitFiles.path("check-units.sh")])
      #expect(result.status == 0, "\(result.output)")
      #expect(result.output.contains("verify: ok"))
      #expect(result.output.contains("sysusers, tmpfiles: ok"))
    }

    @Test(
      .enabled(
        if: UnitFiles.sysusersAndTmpfilesAvailable, "systemd-sysusers or systemd-tmpfiles is not installed"))
    func sysusersAndTmpfilesCreateUserGroupsAndDirectories() async throws {
      let root = try TempDirectory("tbsd")
      try FileManager.default.createDirectory(atPath: root.path + "/etc", withIntermediateDirectories: true)
      let sysusers = try await UnitFiles.run(
        "/usr/bin/systemd-sysusers", ["--root=" + root.path, UnitFiles.path("token-broker.sysusers")])
      #expect(sysusers.status == 0, "\(sysusers.output)")
      let passwd = try String(contentsOfFile: root.path + "/etc/passwd", encoding: .utf8)
      let group = try String(contentsOfFile: root.path + "/etc/group", encoding: .utf8)
      let user = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("token-broker:") })
      #expect(user.hasSuffix(":/var/lib/token-broker:/usr/sbin/nologin"))
      #expect(group.split(separator: "\n").contains { $0.hasPrefix("token-broker:") })
      #expect(group.split(separator: "\n").contains { $0.hasPrefix("token-broker-admin:") })
      // The socket's group, with the daemon's user as its only member.
      let clients = try #require(group.split(separator: "\n").first { $0.hasPrefix("token-broker-clients:") })
      #expect(clients.split(separator: ":", omittingEmptySubsequences: false).last == "token-broker")

      let tmpfiles = try await UnitFiles.run(
        "/usr/bin/systemd-tmpfiles",
        ["--root=" + root.path, "--create", UnitFiles.path("token-broker.tmpfiles")])
      #expect(tmpfiles.status == 0, "\(tmpfiles.output)")
      for directory in ["/etc/token-broker", "/etc/token-broker/secrets"] {
        var info = stat()
        try #require(stat(root.path + directory, &info) == 0, "\(directory) missing")
        #expect(info.st_mode & 0o7777 == 0o750, "\(directory) mode")
        #expect(info.st_uid == 0, "\(directory) owner")
      }
    }

    @Test func serviceDeclaresTheContract() throws {
      let service = "token-broker.service"
      let single: [(String, String)] = [
        ("Type", "notify"),
        ("ExecStart", "/usr/bin/token-brokerd --config /etc/token-broker/broker.toml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("WatchdogSec", "30s"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("User", "token-broker"),
        ("Group", "token-broker"),
        ("StateDirectory", "token-broker"),
        ("StateDirectoryMode", "0700"),
        ("UMask", "0077"),
        ("LimitCORE", "0"),
        ("MemoryDenyWriteExecute", "yes"),
        ("Environment", "SWIFT_BACKTRACE=enable=no"),
        ("SystemCallErrorNumber", "EPERM"),
        ("ProtectSystem", "strict"),
        ("Requires", "token-broker.socket"),
      ]
      for (key, value) in single {
        #expect(try UnitFiles.values(key, in: service) == [value], "\(key)=")
      }
      #expect(try UnitFiles.values("After", in: service).contains { $0.contains("token-broker.socket") })
      let families = try UnitFiles.values("RestrictAddressFamilies", in: service)
      #expect(families.map { Set($0.split(separator: " ")) } == [["AF_UNIX", "AF_INET", "AF_INET6"]])
      // PrivateUsers= turns peer uids into "nobody"; IPAddressDeny= would block upstream.
      #expect(try UnitFiles.values("PrivateUsers", in: service).isEmpty)
      #expect(try UnitFiles.values("IPAddressDeny", in: service).isEmpty)
      #expect(try UnitFiles.values("PrivateNetwork", in: service).isEmpty)
      #expect(try UnitFiles.text(service).contains("#LoadCredential="))
    }

    @Test func socketDeclaresTheContract() throws {
      let socket = "token-broker.socket"
      let expected: [(String, String)] = [
        ("ListenStream", "/run/token-broker.sock"),
        ("SocketMode", "0660"),
        ("SocketUser", "root"),
        ("SocketGroup", "token-broker-clients"),
        ("Accept", "no"),
        ("RemoveOnStop", "yes"),
      ]
      for (key, value) in expected {
        #expect(try UnitFiles.values(key, in: socket) == [value], "\(key)=")
      }
    }

    /// Clients must not need the group that can read the secrets: the socket's group is not
    /// the group of /etc/token-broker/secrets (tmpfiles) nor the daemon's own group.
    @Test func socketGroupIsNotTheSecretsGroup() throws {
      let socketGroup = try #require(UnitFiles.values("SocketGroup", in: "token-broker.socket").first)
      let secrets = try UnitFiles.text("token-broker.tmpfiles").split(separator: "\n")
        .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        .first { $0.count >= 5 && $0[0] == "d" && $0[1] == "/etc/token-broker/secrets" }
      let secretsGroup = try #require(secrets?[4], "no line for /etc/token-broker/secrets")
      #expect(socketGroup != secretsGroup)
      #expect(try UnitFiles.values("Group", in: "token-broker.service") != [socketGroup])
      let sysusers = try UnitFiles.text("token-broker.sysusers").split(separator: "\n")
        .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
      #expect(sysusers.contains { $0.count >= 2 && $0[0] == "g" && $0[1] == socketGroup })
    }
  }
}

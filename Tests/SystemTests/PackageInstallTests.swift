import Foundation
import Glibc
import NIOPosix
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// The Debian package installed, used, upgraded, removed and purged under a real systemd as
  /// PID 1 (``SystemdContainer`` with nothing installed; `/usr`, `/etc` and `/var` are
  /// overlays, so the host is untouched), following README "Install and run under systemd":
  /// the commands of its first `sh` block are read from the README and run as they are.
  /// The packages are built by `.debian/build-deb.sh` from the debug binaries of this build
  /// (revisions 1 and 2, for the upgrade).
  @Suite(
    "The Debian package under a real systemd",
    .enabled(
      if: SystemdContainer.isPossible && access("/usr/bin/dpkg-shlibdeps", X_OK) == 0,
      "needs root, /lib/systemd/systemd and dpkg-dev (make test installs it)"))
  struct PackageInstallTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent().path
    static let configPath = "/etc/token-broker/broker.toml"
    static let secretPath = "/etc/token-broker/secrets/energy"

    /// The commands of the README's install block: the first ```sh block after the heading
    /// "## Install and run under systemd", without blank and comment lines.
    static func readmeInstallCommands() throws -> [String] {
      let readme = try String(contentsOfFile: repository + "/README.md", encoding: .utf8)
      guard let section = readme.range(of: "\n## Install and run under systemd\n"),
        let open = readme.range(of: "\n```sh\n", range: section.upperBound..<readme.endIndex),
        let close = readme.range(of: "\n```\n", range: open.upperBound..<readme.endIndex)
      else { throw SetupError("README.md has no ```sh block under \"## Install and run under systemd\"") }
      return readme[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init).filter {
        let line = $0.trimmingCharacters(in: .whitespaces)
        return !line.isEmpty && !line.hasPrefix("#")
      }
    }

    @Test func installUseUpgradeRemoveAndPurgeAsTheREADMESays() async throws {
      let commands = try Self.readmeInstallCommands()
      #expect(commands.first?.hasPrefix("dpkg -i ") == true, "\(commands)")
      let binaries = try BuiltBinaries.directory.get()
      let debs = try TempDirectory("tbdeb")
      let first = try Self.buildPackage(binaries, debs.path, revision: 1)
      let second = try Self.buildPackage(binaries, debs.path, revision: 2)
      let version = try runToEnd(binaries + "/token-brokerd", ["--version"]).stdout.trimmed

      let container = try await offload {
        try SystemdContainer.boot(repository: Self.repository, binaries: binaries, makeInstall: false)
      }
      defer { container.shutdown() }
      let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
      var settings = FakeUpstream.Settings()
      settings.clientSecret = "s3cret-\(uniqueSuffix())"
      let upstream = FakeUpstream(.energy, settings: settings, now: { Date().timeIntervalSince1970 })
      let executor = try container.makeNetworkNamespaceExecutor()
      do {
        try await withTaskExecutorPreference(executor) { try await upstream.start(group: group) }
      } catch {
        executor.stop()
        try? await group.shutdownGracefully()
        throw error
      }
      executor.stop()
      do {
        try await Self.run(container, upstream, commands, first: first, second: second, version: version)
      } catch {
        await upstream.stop()
        try? await group.shutdownGracefully()
        throw error
      }
      await upstream.stop()
      try? await group.shutdownGracefully()
    }

    /// The daemon's package; the fleet helper's is beside it (`token-broker-fleet_...`).
    static func buildPackage(_ binaries: String, _ out: String, revision: Int) throws -> String {
      let built = try runToEnd(
        "/bin/sh", [repository + "/.debian/build-deb.sh", binaries, out, String(revision)],
        environment: ["DEB_COMPRESSION": "none"], within: 300)
      let paths = built.stdout.split(separator: "\n").map(String.init)
      guard built.status == 0, let path = paths.first(where: { $0.contains("/token-broker_") }),
        paths.contains(where: { $0.contains("/token-broker-fleet_") })
      else {
        throw SetupError("build-deb.sh: exit \(built.status): \(built.stdout)\(built.stderr)")
      }
      return path
    }

    static func fleetPackage(beside path: String) -> String {
      path.replacing("/token-broker_", with: "/token-broker-fleet_")
    }

    /// What the operator's editor writes: the configuration (one provider against the fake
    /// upstream inside the container, for user scheduler) and the client secret it names.
    static func edits(_ upstream: FakeUpstream) -> [String: String] {
      let s = upstream.settings
      return [
        "broker.toml": """
        [providers.energy]
        token_url = "\(upstream.tokenURL)"
        grant = "client_credentials"
        client_id = "\(s.clientID)"
        client_secret = { file = "\(secretPath)" }
        allow = ["user:scheduler"]

        """,
        "energy": s.clientSecret + "\n",
      ]
    }

    static func run(
      _ c: SystemdContainer, _ upstream: FakeUpstream, _ commands: [String], first: String, second: String,
      version: String
    ) async throws {
      // The operator's files: the .deb in a folder of its own, an editor that writes what the
      // operator would type, and the users of the README (scheduler) and of this test.
      try await offload {
        try c.check(["mkdir", "-p", "/var/tmp/tb-install", "/var/tmp/tb-upgrade", "/run/tb-edits"])
        for deb in [first, fleetPackage(beside: first)] {
          try FileManager.default.copyItem(
            atPath: deb, toPath: c.hostPath("/var/tmp/tb-install/" + (deb as NSString).lastPathComponent))
        }
        try FileManager.default.copyItem(
          atPath: second, toPath: c.hostPath("/var/tmp/tb-upgrade/" + (second as NSString).lastPathComponent))
        for (name, text) in edits(upstream) {
          try c.install(text, at: "/run/tb-edits/" + name, mode: "0644")
        }
        try c.install(
          "#!/bin/sh\ncat \"/run/tb-edits/${1##*/}\" >\"$1\"\n", at: "/run/tb-editor", mode: "0755")
        for user in ["scheduler", "visitor", "stranger"] {
          try c.check(["useradd", "--no-create-home", user])
        }
      }

      // README "Install and run under systemd", line by line, in the folder of the .deb.
      var outputs: [String] = []
      for command in commands {
        let result = try await offload {
          try c.run(["env", "EDITOR=/run/tb-editor", "sh", "-c", "cd /var/tmp/tb-install && " + command])
        }
        #expect(result.status == 0, "\(command): exit \(result.status)\n\(result.stdout)\n\(result.stderr)")
        guard result.status == 0 else { return }
        outputs.append(result.stdout)
        if command.hasPrefix("dpkg -i ") {
          // The package alone: the socket enabled and listening, the service not started.
          #expect(try c.property("token-broker.socket", "UnitFileState") == "enabled")
          #expect(try c.property("token-broker.socket", "SubState") == "listening")
          #expect(try c.property("token-broker.service", "ActiveState") == "inactive")
        }
      }
      let checked = try #require(outputs.first { $0.hasPrefix(configPath + ": ok") }, "\(outputs)")
      #expect(checked.contains("user token-broker can read it and every secret file"), "\(checked)")
      #expect(upstream.issuedAccessTokens.contains(outputs.last?.trimmed ?? "-"), "\(outputs.last ?? "")")

      // What the package set up: the users, the conffile's group and mode, the units.
      let config = try #require(fileStatus(c.hostPath(configPath)))
      #expect(config.st_mode & 0o7777 == 0o640)
      let brokerGroup = try gid(c, "token-broker")
      #expect(config.st_uid == 0 && config.st_gid == brokerGroup)
      #expect(
        try c.check(["dpkg-query", "-W", "-f=${Status} ${Version}", "token-broker"])
          == "install ok installed \(version)-1")
      #expect(try c.property("token-broker.socket", "UnitFileState") == "enabled")
      #expect(try c.property("token-broker.service", "ActiveState") == "active")
      #expect(
        try c.check(["runuser", "-u", "scheduler", "--", "tokenctl", "token", "energy"]).trimmed.isEmpty
          == false)

      // The fleet's helper is a package of its own: not installed with the daemon, installed
      // beside it for [fleet] (README "Fleet"), and the daemon's package is not removed from under it.
      let helper = "/usr/libexec/token-broker/token-broker-fleet"
      #expect(fileStatus(c.hostPath(helper)) == nil)
      let fleet = try c.run(["sh", "-c", "cd /var/tmp/tb-install && dpkg -i token-broker-fleet_*.deb"])
      #expect(fleet.status == 0, "\(fleet)")
      #expect(try c.run([helper, "--help"]).status != 127)
      #expect((fileStatus(c.hostPath(helper))?.st_mode ?? 0) & 0o111 != 0)
      #expect(try c.run(["dpkg", "-r", "token-broker"]).status != 0)
      #expect(try c.run(["dpkg", "-r", "token-broker-fleet"]).status == 0)
      #expect(fileStatus(c.hostPath(helper)) == nil)

      // Who is refused: a client of the socket's group whom the provider does not allow (77),
      // a user outside that group (69: the socket refuses it).
      try c.check(["usermod", "-aG", "token-broker-clients", "visitor"])
      let visitor = try c.run(["runuser", "-u", "visitor", "--", "tokenctl", "token", "energy"])
      #expect(visitor.status == 77, "\(visitor)")
      #expect(visitor.stdout.isEmpty)
      let stranger = try c.run(["runuser", "-u", "stranger", "--", "tokenctl", "token", "energy"])
      #expect(stranger.status == 69, "\(stranger)")
      #expect(stranger.stderr.contains("permission denied on /run/token-broker.sock"), "\(stranger.stderr)")

      try checkConfigNamesWhatTheServiceCannotRead(c)
      try reloadAndRestart(c, upstream)
      try await aFailingServiceIsExplained(c)

      // The upgrade: the service restarts in the new package, the socket is kept, the edited
      // configuration too, and the token in hand: served afterwards with no request upstream.
      let held = try c.check(["runuser", "-u", "scheduler", "--", "tokenctl", "token", "energy"]).trimmed
      let requests = upstream.requestCount
      let before = try c.property("token-broker.service", "MainPID")
      let socketSince = try c.property("token-broker.socket", "ActiveEnterTimestampMonotonic")
      let upgrade = try c.run([
        "sh", "-c", "cd /var/tmp/tb-upgrade && dpkg -i " + (second as NSString).lastPathComponent,
      ])
      #expect(upgrade.status == 0, "\(upgrade)")
      #expect(try c.check(["dpkg-query", "-W", "-f=${Version}", "token-broker"]) == "\(version)-2")
      #expect(try c.property("token-broker.service", "ActiveState") == "active")
      #expect(try c.property("token-broker.service", "MainPID") != before)
      #expect(try c.property("token-broker.socket", "ActiveEnterTimestampMonotonic") == socketSince)
      #expect(
        try String(contentsOfFile: c.hostPath(configPath), encoding: .utf8) == edits(upstream)["broker.toml"])
      #expect(
        try c.check(["runuser", "-u", "scheduler", "--", "tokenctl", "token", "energy"]).trimmed == held)
      #expect(upstream.requestCount == requests, "the upgraded daemon asked the upstream again")

      // Remove: stopped, the socket gone; configuration, state and users kept.
      let removed = try c.run(["dpkg", "-r", "token-broker"])
      #expect(removed.status == 0, "\(removed)")
      #expect(try c.property("token-broker.service", "ActiveState") == "inactive")
      #expect(try c.property("token-broker.socket", "ActiveState") == "inactive")
      #expect(fileStatus(c.hostPath("/run/token-broker.sock")) == nil)
      #expect(fileStatus(c.hostPath("/usr/bin/token-brokerd")) == nil)
      #expect(fileStatus(c.hostPath("/var/lib/token-broker")) != nil)
      #expect(fileStatus(c.hostPath(configPath)) != nil)
      #expect(fileStatus(c.hostPath(secretPath)) != nil)
      #expect(try c.run(["getent", "passwd", "token-broker"]).status == 0)

      // Purge: state, configuration and users go.
      let purged = try c.run(["dpkg", "-P", "token-broker"])
      #expect(purged.status == 0, "\(purged)")
      #expect(fileStatus(c.hostPath("/var/lib/token-broker")) == nil)
      #expect(fileStatus(c.hostPath("/etc/token-broker")) == nil)
      for name in ["token-broker", "token-broker-clients", "token-broker-admin"] {
        #expect(try c.run(["getent", "group", name]).status == 2, "group \(name) left")
      }
      #expect(try c.run(["getent", "passwd", "token-broker"]).status == 2)
      #expect(try c.run(["dpkg-query", "-W", "token-broker"]).status != 0)
    }

    static func gid(_ c: SystemdContainer, _ group: String) throws -> gid_t {
      let line = try c.check(["getent", "group", group]).trimmed
      guard let gid = line.split(separator: ":").dropFirst(2).first.flatMap({ gid_t($0) }) else {
        throw SetupError("getent group \(group): \(line)")
      }
      return gid
    }

    /// A secret only root can read: `--check-config` (as root) says that the service's user
    /// cannot, and prints the command that fixes it; after that command it passes.
    static func checkConfigNamesWhatTheServiceCannotRead(_ c: SystemdContainer) throws {
      try c.check(["chmod", "0600", secretPath])
      try c.check(["chgrp", "root", secretPath])
      let refused = try c.run(["token-brokerd", "--check-config"])
      #expect(refused.status == 78, "\(refused)")
      let prefix =
        "\(configPath):5: providers.energy.client_secret: user token-broker (the service's) cannot read "
      let line = try #require(
        refused.stderr.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(refused.stderr)")
      let fix = try #require(line.components(separatedBy: "; run: ").last)
      #expect(fix == "chgrp token-broker \(secretPath) && chmod 0640 \(secretPath)")
      try c.check(["sh", "-c", fix])
      let passed = try c.run(["token-brokerd", "--check-config"])
      #expect(passed.status == 0, "\(passed)")
    }

    /// `systemctl reload` keeps the process, `systemctl restart` replaces it; both keep serving.
    static func reloadAndRestart(_ c: SystemdContainer, _ upstream: FakeUpstream) throws {
      let pid = try c.property("token-broker.service", "MainPID")
      try c.systemctl("reload", "token-broker.service")
      #expect(try c.property("token-broker.service", "MainPID") == pid)
      try c.systemctl("restart", "token-broker.service")
      #expect(try c.property("token-broker.service", "MainPID") != pid)
      #expect(try c.property("token-broker.service", "ActiveState") == "active")
      let token = try c.check(["runuser", "-u", "scheduler", "--", "tokenctl", "token", "energy"]).trimmed
      #expect(upstream.issuedAccessTokens.contains(token))
    }

    /// A configuration the service's user cannot read: the service fails and says as whom,
    /// with the command that fixes it and no ":0"; a client that connects meanwhile gets 69
    /// and what to run.
    static func aFailingServiceIsExplained(_ c: SystemdContainer) async throws {
      try c.check(["chgrp", "root", configPath])
      let restart = try c.run(["systemctl", "restart", "token-broker.service"])
      #expect(restart.status != 0)
      let message = try awaitValue("the daemon's refusal in the journal") {
        try c.journal(["--unit=token-broker.service"]).last {
          $0["MESSAGE"]?.contains("cannot read the configuration") == true
        }?["MESSAGE"]
      }
      #expect(
        message
          == "\(configPath): cannot read the configuration as user token-broker: Permission denied "
          + "(mode 0640 root:root); run as root: chgrp token-broker \(configPath) && chmod 0640 \(configPath)"
      )
      let client = try c.run(["runuser", "-u", "scheduler", "--", "tokenctl", "token", "energy"])
      #expect(client.status == 69, "\(client)")
      #expect(
        client.stderr.contains(
          "token-brokerd did not answer; it may have failed to start: systemctl status token-broker"),
        "\(client.stderr)")
      try c.check(["chgrp", "token-broker", configPath])
      _ = try? c.systemctl("reset-failed", "token-broker.service")
      try c.systemctl("start", "token-broker.socket", "token-broker.service")
    }
  }
}

import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A throwaway PostgreSQL 15 cluster (Debian's `postgresql` package), its own per fixture:
/// data and socket directories owned by `postgres` in a temporary directory, the server on
/// 127.0.0.1 and a free port. Local (socket) connections are trusted, TCP ones need a password
/// (SCRAM-SHA-256): ``dsn`` logs in as the role `broker`, owner of the database `fleet`, with a
/// random password; ``psql(_:database:)`` runs SQL as the superuser over the socket.
///
/// One `initdb` per test process: later fixtures copy its cluster. ``stop()`` (`pg_ctl -m fast`)
/// simulates an outage, ``start()`` ends it; ``teardown()``, or deinit, always stops the server
/// and removes the directory, and the next test process stops and removes what a killed one
/// left (`owner.pid` names the process a fixture belongs to). Needs root (`runuser -u postgres`).
package final class PostgresFixture: Sendable {
  package static let binaries = "/usr/lib/postgresql/15/bin"
  package static let role = "broker"
  package static let database = "fleet"

  package let directory: String
  package let dataDirectory: String
  package let socketDirectory: String
  package let port: Int
  /// The password of the role `broker` (TCP logins only).
  package let password: String
  private let running = Mutex(false)

  /// True when the fixture can run here: PostgreSQL 15 installed, and root (to act as postgres).
  package static var isAvailable: Bool {
    geteuid() == 0 && access(binaries + "/initdb", X_OK) == 0 && getpwnam("postgres") != nil
  }

  /// `postgresql://broker:PASSWORD@127.0.0.1:PORT/fleet?sslmode=disable`.
  package var dsn: String {
    "postgresql://\(Self.role):\(password)@127.0.0.1:\(port)/\(Self.database)?sslmode=disable"
  }

  /// The same database through the Unix socket (trusted: no password).
  package var socketDSN: String {
    "postgresql://\(Self.role)@/\(Self.database)?host=\(socketDirectory)&port=\(port)"
  }

  /// A cluster of its own, started, with the role `broker` and its database `fleet`.
  package static func start() async throws -> PostgresFixture {
    guard isAvailable else {
      throw SetupError(
        "PostgreSQL 15 is not installed (apt-get install postgresql, or make deps) or this is not root")
    }
    let template = try await Self.template()
    let fixture = try PostgresFixture(template: template)
    try await fixture.start()
    try await fixture.psql("CREATE ROLE \(role) LOGIN PASSWORD '\(fixture.password)'", database: "postgres")
    try await fixture.psql("CREATE DATABASE \(database) OWNER \(role)", database: "postgres")
    return fixture
  }

  private init(template: String) throws {
    directory = try TempDirectory.make("tb-pg")
    try TempDirectory.write(directory + "/owner.pid", "\(getpid())\n")
    dataDirectory = directory + "/data"
    socketDirectory = directory + "/sock"
    port = try Self.freePort()
    var bytes = [UInt8](repeating: 0, count: 12)
    for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
    password = "pw-" + bytes.map { String($0, radix: 16) }.joined()
    let pg = getpwnam("postgres")!.pointee
    guard mkdir(socketDirectory, 0o700) == 0 else { throw SetupError.errno("mkdir \(socketDirectory)") }
    for dir in [directory, socketDirectory] { chown(dir, pg.pw_uid, pg.pw_gid) }
    let copy = try ChildProcess.run(
      "/bin/cp", ["-a", template, dataDirectory], environment: ChildProcess.minimalEnvironment())
    guard copy.status == 0 else { throw SetupError("cp -a \(template): \(copy.stderr)") }
  }

  deinit { teardown() }

  /// Starts the server (again, after ``stop()``); returns once it accepts connections.
  package func start() async throws {
    let options = [
      "-p \(port)", "-c listen_addresses=127.0.0.1", "-k \(socketDirectory)", "-c fsync=off",
      "-c shared_buffers=16MB", "-c max_connections=60", "-c log_min_messages=warning",
    ].joined(separator: " ")
    let out = try await ProcessRunner.run(
      asPostgres(
        "pg_ctl", "-D", dataDirectory, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options,
        "start"))
    guard out.status == 0 else { throw SetupError("pg_ctl start failed: \(out.stdout)\(out.stderr)\n\(log)") }
    running.withLock { $0 = true }
  }

  /// Stops the server (`pg_ctl -m fast`: sessions are ended, as in an outage or a restart).
  package func stop() async throws {
    let out = try await ProcessRunner.run(
      asPostgres("pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "stop"))
    guard out.status == 0 else { throw SetupError("pg_ctl stop failed: \(out.stdout)\(out.stderr)") }
    running.withLock { $0 = false }
  }

  package func restart() async throws {
    try await stop()
    try await start()
  }

  /// Runs `sql` as the superuser over the socket; its output unaligned, tuples only (`psql -XAtq`).
  @discardableResult
  package func psql(_ sql: String, database: String = PostgresFixture.database) async throws -> String {
    let out = try await ProcessRunner.run(
      asPostgres(
        "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(port)", "-d",
        database, "-c", sql))
    guard out.status == 0 else { throw SetupError("psql failed: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The server's log so far.
  package var log: String { (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "" }

  /// Stops the server at once (`-m immediate`) if it runs, and removes the directory. Blocking.
  package func teardown() {
    let wasRunning = running.withLock { r in
      defer { r = false }
      return r
    }
    if wasRunning || access(dataDirectory + "/postmaster.pid", F_OK) == 0 {
      _ = try? ChildProcess.run(
        "/usr/sbin/runuser",
        [
          "-u", "postgres", "--", Self.binaries + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w",
          "stop",
        ],
        environment: ChildProcess.minimalEnvironment(), within: 60)
    }
    try? FileManager.default.removeItem(atPath: directory)
  }

  private func asPostgres(_ tool: String, _ arguments: String...) -> [String] {
    ["/usr/sbin/runuser", "-u", "postgres", "--", Self.binaries + "/" + tool] + arguments
  }

  /// One initdb per process; every fixture copies it.
  private static let templateTask = Mutex<Task<String, any Error>?>(nil)

  private static func template() async throws -> String {
    let task = templateTask.withLock { t in
      if let t { return t }
      let made = Task { try await makeTemplate() }
      t = made
      return made
    }
    return try await task.value
  }

  private static func makeTemplate() async throws -> String {
    reapOrphans()
    let dir = try TempDirectory.make("tb-pgtemplate")
    try TempDirectory.write(dir + "/owner.pid", "\(getpid())\n")
    let pg = getpwnam("postgres")!.pointee
    chown(dir, pg.pw_uid, pg.pw_gid)
    let data = dir + "/data"
    let out = try await ProcessRunner.run([
      "/usr/sbin/runuser", "-u", "postgres", "--", binaries + "/initdb", "-D", data, "--auth-local=trust",
      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
    ])
    guard out.status == 0 else { throw SetupError("initdb failed: \(out.stdout)\(out.stderr)") }
    atexit { PostgresFixture.templateCleanup() }
    templatePath.withLock { $0 = dir }
    return data
  }

  private static let templatePath = Mutex<String?>(nil)

  /// Stops the servers and removes the directories of fixtures whose test process died without
  /// a teardown (killed, or crashed): their `owner.pid` names a process that is gone.
  private static func reapOrphans() {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
    for name in names where name.hasPrefix("tb-pg-") || name.hasPrefix("tb-pgtemplate-") {
      let dir = "/tmp/" + name
      guard let text = try? String(contentsOfFile: dir + "/owner.pid", encoding: .utf8),
        let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
        kill(owner, 0) != 0 && errno == ESRCH
      else { continue }
      if access(dir + "/data/postmaster.pid", F_OK) == 0 {
        _ = try? ChildProcess.run(
          "/usr/sbin/runuser",
          [
            "-u", "postgres", "--", binaries + "/pg_ctl", "-D", dir + "/data", "-m", "immediate", "-w",
            "stop",
          ],
          environment: ChildProcess.minimalEnvironment(), within: 60)
      }
      try? FileManager.default.removeItem(atPath: dir)
    }
  }

  fileprivate static func templateCleanup() {
    if let dir = templatePath.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: dir) }
  }

  /// A port nothing listens on now (the kernel's pick for a bound, closed socket).
  private static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SetupError.errno("socket") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    let bound = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0 else { throw SetupError.errno("bind 127.0.0.1:0") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard named == 0 else { throw SetupError.errno("getsockname") }
    return Int(UInt16(bigEndian: addr.sin_port))
  }
}

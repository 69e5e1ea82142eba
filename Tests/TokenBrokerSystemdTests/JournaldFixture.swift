import Foundation
import Glibc
import Synchronization
import TokenBrokerTestSupport

/// A journald for tests that read back what they logged.
///
/// When nothing listens on `/run/systemd/journal/socket` (a container or CI machine without
/// systemd as PID 1), ``ensureRunning()`` starts `/lib/systemd/systemd-journald` in the
/// background (it runs as root without a service manager) and waits, polling, until its socket
/// accepts datagrams. The daemon is left running for later tests and runs; it keeps its journal
/// in `/run/log/journal`. ``entries(matching:atLeast:)`` reads entries back with `journalctl`.
///
/// Copy or move this file to a shared test-support target when other test targets need it.
enum JournaldFixture {
  static let socketPath = "/run/systemd/journal/socket"
  static let daemonPath = "/lib/systemd/systemd-journald"
  static let journalctlPath = "/usr/bin/journalctl"
  /// Upper bound for journald to come up and for an entry to become readable.
  static let patience: Duration = .seconds(20)

  /// A parsed `journalctl -o json` entry.
  struct Entry: Sendable {
    /// Every value of each field (a field may repeat).
    let fields: [String: [String]]
    /// The first value of `name`.
    subscript(_ name: String) -> String? { fields[name]?.first }
  }

  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// True when a journald listens or one can be started here (root, journald installed), and
  /// journalctl can read it back: the condition for `.enabled(if:)`.
  static var isAvailable: Bool {
    guard access(journalctlPath, X_OK) == 0 else { return false }
    return isListening() || (geteuid() == 0 && access(daemonPath, X_OK) == 0)
  }

  /// The pid of the journald this fixture started (`Spawn`, not Foundation's `Process`).
  private static let daemon = Mutex<pid_t?>(nil)

  /// Makes sure a journald is listening, starting one if none is.
  static func ensureRunning() throws {
    try daemon.withLock { (started: inout pid_t?) throws in
      if isListening() { return }
      started = try start()
    }
  }

  /// True when a datagram socket can connect to journald's socket (a stale socket file left by
  /// a journald that died refuses the connection).
  static func isListening() -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8)) }
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
      }
    }
  }

  private static func start() throws -> pid_t {
    // A clean environment: journald must not see the tests' NOTIFY_SOCKET or LISTEN_FDS.
    let pid: pid_t
    do {
      pid = try Spawn.start(
        daemonPath, [], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"],
        stdout: "/dev/null", stderr: "/dev/null")
    } catch {
      throw Failure(description: error.description)
    }
    let deadline = ContinuousClock.now + patience
    while !isListening() {
      var status: Int32 = 0
      guard waitpid(pid, &status, WNOHANG) != pid else {
        throw Failure(description: "\(daemonPath) exited with status \(Spawn.exitStatus(status))")
      }
      guard ContinuousClock.now < deadline else {
        kill(pid, SIGTERM)
        _ = Spawn.waitBlocking(pid)
        throw Failure(description: "\(daemonPath) did not listen on \(socketPath) in time")
      }
      usleep(10_000)
    }
    return pid
  }

  /// The entries matching every `FIELD=value` in `matches`, once there are at least `count` of
  /// them; polls journalctl until then, bounded by ``patience``.
  static func entries(matching matches: [String], atLeast count: Int = 1) throws -> [Entry] {
    let deadline = ContinuousClock.now + patience
    while true {
      let found = try query(matches)
      if found.count >= count { return found }
      guard ContinuousClock.now < deadline else {
        throw Failure(description: "journalctl \(matches): \(found.count) entries, expected \(count)")
      }
      usleep(20_000)
    }
  }

  /// One `journalctl -o json --all` run over `matches`.
  static func query(_ matches: [String]) throws -> [Entry] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: journalctlPath)
    process.arguments = ["--no-pager", "--quiet", "--all", "--output=json"] + matches
    process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER": ""]
    let output = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return try data.split(separator: UInt8(ascii: "\n")).map { line in
      guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
        throw Failure(description: "journalctl printed a line that is not a JSON object")
      }
      return Entry(fields: object.compactMapValues(values))
    }
  }

  /// journalctl's JSON values: a string, an array of bytes (non-printable data), null (too
  /// large), or an array of those for a repeated field.
  private static func values(_ json: Any) -> [String]? {
    if let text = json as? String { return [text] }
    if let bytes = json as? [Int] {
      return [String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)]
    }
    if let many = json as? [Any] { return many.flatMap { values($0) ?? [] } }
    return nil
  }
}

import Foundation
import Glibc
import Synchronization
import Testing
import TokenBrokerTestSupport

/// A journald for tests that read back what the daemon logged (the logic of
/// `Tests/TokenBrokerSystemdTests/JournaldFixture.swift`, plus stopping what it started).
///
/// When nothing listens on `/run/systemd/journal/socket` (a container or CI machine without
/// systemd as PID 1), ``ensureRunning()`` starts `/lib/systemd/systemd-journald` in the
/// background (it runs as root without a service manager) and waits, polling, until its socket
/// accepts datagrams; ``JournaldScope`` stops it when the suite ends. ``entries(matching:)``
/// reads entries back with `journalctl -o json`.
enum Journald {
  static let socketPath = "/run/systemd/journal/socket"
  static let daemonPath = "/lib/systemd/systemd-journald"
  static let journalctlPath = "/usr/bin/journalctl"
  /// Upper bound for journald to come up and for an entry to become readable.
  static let patience: Double = 20

  /// A parsed `journalctl -o json` entry.
  struct Entry: Sendable {
    /// Every value of each field (a field may repeat).
    let fields: [String: [String]]
    /// The first value of `name`.
    subscript(_ name: String) -> String? { fields[name]?.first }
  }

  /// True when a journald listens or one can be started here (root, journald installed), and
  /// journalctl can read it back: the condition for `.enabled(if:)`.
  static var isAvailable: Bool {
    guard access(journalctlPath, X_OK) == 0 else { return false }
    return isListening() || (geteuid() == 0 && access(daemonPath, X_OK) == 0)
  }

  /// The pid of the journald ``ensureRunning()`` started (`Spawn`, not Foundation's
  /// `Process`: see there).
  private static let started = Mutex<pid_t?>(nil)

  /// Makes sure a journald is listening, starting one if none is.
  static func ensureRunning() throws {
    try started.withLock { (pid: inout pid_t?) throws in
      if isListening() { return }
      if let old = pid { stop(old) }
      pid = try start()
    }
  }

  /// Stops the journald ``ensureRunning()`` started, if any.
  static func stopIfStarted() {
    started.withLock { (pid: inout pid_t?) in
      guard let p = pid else { return }
      stop(p)
      pid = nil
    }
  }

  private static func stop(_ pid: pid_t) {
    kill(pid, SIGTERM)
    _ = Spawn.waitBlocking(pid)
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
    // A clean environment: journald must not see NOTIFY_SOCKET or LISTEN_FDS.
    let pid = try Spawn.start(
      daemonPath, [], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"],
      stdout: "/dev/null", stderr: "/dev/null")
    do {
      try poll("\(daemonPath) to listen on \(socketPath)", within: patience) {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) != pid else {
          throw SetupError("\(daemonPath) exited with status \(Spawn.exitStatus(status))")
        }
        return isListening()
      }
    } catch {
      stop(pid)
      throw error
    }
    return pid
  }

  /// The entries matching every `FIELD=value` in `matches` (logged at or after `since`, Unix
  /// seconds), once `condition` holds for them; polls journalctl until then, bounded.
  static func entries(
    matching matches: [String], since: Double? = nil, _ what: String = "entries",
    until condition: ([Entry]) -> Bool = { !$0.isEmpty }
  ) throws -> [Entry] {
    var found: [Entry] = []
    do {
      try poll("journalctl \(matches): \(what)", within: patience) {
        found = try query(matches, since: since)
        return condition(found)
      }
    } catch {
      throw SetupError(
        "journalctl \(matches): \(what) not found in \(found.count) entries: \(found.map(\.fields))")
    }
    return found
  }

  /// One `journalctl -o json --all` run over `matches`.
  static func query(_ matches: [String], since: Double? = nil) throws -> [Entry] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: journalctlPath)
    var arguments = ["--no-pager", "--quiet", "--all", "--output=json"]
    if let since { arguments.append("--since=@\(Int(since.rounded(.down)))") }
    process.arguments = arguments + matches
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
        throw SetupError("journalctl printed a line that is not a JSON object")
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

/// Stops, when the suite ends, a journald that one of its tests started.
struct JournaldScope: SuiteTrait, TestScoping {
  var isRecursive: Bool { false }

  func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    defer { Journald.stopIfStarted() }
    try await function()
  }
}

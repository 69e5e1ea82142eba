import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A journald for tests that read back what they (or a daemon they started) logged; no
/// libsystemd: the daemon is spawned, the journal read with `journalctl -o json`.
///
/// When nothing listens on `/run/systemd/journal/socket` (a container or CI machine without
/// systemd as PID 1), ``ensureRunning()`` starts `/lib/systemd/systemd-journald` in the
/// background (it runs as root without a service manager) and waits, polling, until its socket
/// accepts datagrams; it keeps its journal in `/run/log/journal`. ``stopIfStarted()`` stops
/// it (a suite that started it calls it at its end). ``entries(matching:since:_:until:)``
/// reads entries back.
package enum JournaldFixture {
  package static let socketPath = "/run/systemd/journal/socket"
  package static let daemonPath = "/lib/systemd/systemd-journald"
  package static let journalctlPath = "/usr/bin/journalctl"
  /// Upper bound for journald to come up and for an entry to become readable.
  package static let patience: Double = 20

  /// A parsed `journalctl -o json` entry.
  package struct Entry: Sendable {
    /// Every value of each field (a field may repeat).
    package let fields: [String: [String]]
    /// The first value of `name`.
    package subscript(_ name: String) -> String? { fields[name]?.first }
  }

  /// True when a journald listens or one can be started here (root, journald installed), and
  /// journalctl can read it back: the condition for `.enabled(if:)`.
  package static var isAvailable: Bool {
    guard access(journalctlPath, X_OK) == 0 else { return false }
    return isListening() || (geteuid() == 0 && access(daemonPath, X_OK) == 0)
  }

  /// The journald ``ensureRunning()`` started, if any.
  private static let started = Mutex<ChildProcess?>(nil)

  /// Makes sure a journald is listening, starting one if none is.
  package static func ensureRunning() throws {
    try started.withLock { (daemon: inout ChildProcess?) throws in
      if isListening() { return }
      daemon?.stop()
      daemon = try start()
    }
  }

  /// Stops the journald ``ensureRunning()`` started, if any.
  package static func stopIfStarted() {
    started.withLock { (daemon: inout ChildProcess?) in
      daemon?.stop()
      daemon = nil
    }
  }

  /// True when a datagram socket can connect to journald's socket (a stale socket file left by
  /// a journald that died refuses the connection).
  package static func isListening() -> Bool {
    guard let address = try? UnixSocketAddress(socketPath) else { return false }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return address.connect(fd) == 0
  }

  private static func start() throws -> ChildProcess {
    // A clean environment: journald must not see the tests' NOTIFY_SOCKET or LISTEN_FDS.
    let daemon = try ChildProcess.start([daemonPath], environment: ChildProcess.minimalEnvironment())
    do {
      try poll("\(daemonPath) to listen on \(socketPath)", within: patience, every: 0.01) {
        guard daemon.isRunning else {
          throw SetupError("\(daemonPath) exited with status \(Spawn.exitStatus(daemon.rawStatus ?? 0))")
        }
        return isListening()
      }
    } catch {
      daemon.stop()
      throw error
    }
    return daemon
  }

  /// The entries matching every `FIELD=value` in `matches` (logged at or after `since`, Unix
  /// seconds), once `condition` holds for them; polls journalctl until then, bounded by
  /// ``patience``.
  package static func entries(
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

  /// The entries matching every `FIELD=value` in `matches`, once there are at least `count`.
  package static func entries(matching matches: [String], atLeast count: Int) throws -> [Entry] {
    try entries(matching: matches, "at least \(count) entries") { $0.count >= count }
  }

  /// One `journalctl -o json --all` run over `matches`.
  package static func query(_ matches: [String], since: Double? = nil) throws -> [Entry] {
    var arguments = ["--no-pager", "--quiet", "--all", "--output=json"]
    if let since { arguments.append("--since=@\(Int(since.rounded(.down)))") }
    let result = try runToEnd(journalctlPath, arguments + matches, environment: ["SYSTEMD_PAGER": ""])
    return try result.stdout.split(separator: "\n").map { line in
      guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
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

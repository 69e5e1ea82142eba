import Foundation
import Synchronization
import TokenBrokerEngine

#if canImport(Glibc)
  import Glibc
#endif

/// `posix_spawn` for tests and tools: stdin from `/dev/null`, stdout and stderr into files,
/// and no other descriptor of this process (`ProcessSpawn` closes the rest in the child). Not Foundation's
/// `Process`: its exit monitor learns of an exit when the child's end of a socket pair
/// closes, so a long-lived child that inherits another's socket (spawns from several threads
/// race) hides that exit, and the monitor then waits, blocking, for whichever child it
/// heard of: a test run hung that way, a `tokenctl` left a zombie while the monitor waited
/// for the `--dev` daemon.
package enum Spawn {
  /// Starts `executable` with exactly `environment`; returns its pid. stderr may name the same
  /// file as stdout (one log of both); `append` adds to the files instead of truncating them.
  package static func start(
    _ executable: String, _ arguments: [String], environment: [String: String], stdout: String,
    stderr: String, append: Bool = false
  ) throws(SetupError) -> pid_t {
    let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
    do {
      return try ProcessSpawn.start(
        executable, arguments, environment: environment.map { "\($0.key)=\($0.value)" }
      ) { actions in
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, flags, 0o600)
        if stderr == stdout {
          posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
          posix_spawn_file_actions_addopen(&actions, 2, stderr, flags, 0o600)
        }
      }
    } catch {
      throw SetupError("cannot start \(executable): \(error)")
    }
  }

  /// A `waitpid` status as an exit status, or 128 + the signal that ended the process.
  package static func exitStatus(_ status: Int32) -> Int32 {
    // WIFEXITED / WEXITSTATUS / WTERMSIG spelled out: the macros do not import.
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  /// A `waitpid` status in words: `exit N` or `signal N`.
  package static func describe(_ status: Int32) -> String {
    status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
  }

  /// Blocks until `pid` (a child of this process) exits; its `waitpid` status.
  package static func waitBlocking(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
  }
}

/// A process started with ``Spawn`` (no fork of a multi-threaded process, only descriptors
/// 0-2, reaped by its own `waitpid`), stdout and stderr in files (or `/dev/null`). Killed
/// (SIGKILL) on deinit if still running, so that no test or tool leaves one behind, even when
/// it fails half-way.
package final class ChildProcess: Sendable {
  package let executable: String
  package let arguments: [String]
  package let name: String
  package let stdoutPath: String
  package let stderrPath: String
  private let append: Bool
  private let pending: Mutex<[String: String]>
  private let state = Mutex<(pid: pid_t, status: Int32?)>((0, nil))

  /// What a child gets when nothing of this process's environment should leak into it.
  package static func minimalEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = [
      "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
      "SWIFT_BACKTRACE": "enable=no",
    ]
    env.merge(extra) { _, new in new }
    return env
  }

  /// A child not yet started: `environment` exactly (nothing is inherited); stdout and stderr
  /// to these files (nil: `/dev/null`; the same path: one file for both), truncated unless
  /// `append`.
  package init(
    _ executable: String, _ arguments: [String], environment: [String: String], stdout: String? = nil,
    stderr: String? = nil, append: Bool = false, name: String? = nil
  ) {
    self.executable = executable
    self.arguments = arguments
    self.name = name ?? URL(fileURLWithPath: executable).lastPathComponent
    self.stdoutPath = stdout ?? "/dev/null"
    self.stderrPath = stderr ?? "/dev/null"
    self.append = append
    self.pending = Mutex(environment)
  }

  /// A child not yet started, with ``minimalEnvironment(_:)`` plus `environment`, and its output
  /// in `directory` as `NAME.stdout` and `NAME.stderr` (made now, so that their inode is known
  /// before the start).
  package convenience init(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    outputIn directory: TempDirectory, name: String
  ) throws {
    self.init(
      executable, arguments, environment: Self.minimalEnvironment(environment),
      stdout: directory.file("\(name).stdout"), stderr: directory.file("\(name).stderr"), name: name)
    for path in [stdoutPath, stderrPath] {
      guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw SetupError("cannot create \(path)")
      }
    }
  }

  /// Starts `argv` at once (see ``init(_:_:environment:stdout:stderr:append:name:)``).
  package static func start(
    _ argv: [String], environment: [String: String], stdout: String? = nil, stderr: String? = nil,
    append: Bool = false, name: String? = nil
  ) throws -> ChildProcess {
    let child = ChildProcess(
      argv[0], Array(argv.dropFirst()), environment: environment, stdout: stdout, stderr: stderr,
      append: append, name: name)
    try child.start()
    return child
  }

  /// The whole environment of the child; may be changed before ``start()``.
  package var environment: [String: String] {
    get { pending.withLock { $0 } }
    set { pending.withLock { $0 = newValue } }
  }

  package func start() throws {
    let pid = try Spawn.start(
      executable, arguments, environment: environment, stdout: stdoutPath, stderr: stderrPath, append: append)
    state.withLock { $0 = (pid, nil) }
  }

  package var pid: pid_t { state.withLock { $0.pid } }

  /// The raw `waitpid` status once reaped (nil while running or before the start).
  package var rawStatus: Int32? { state.withLock { $0.status } }

  /// Reaps the child when it has exited (never blocks).
  package var isRunning: Bool { reap(blocking: false) == nil && pid != 0 }

  /// The raw status, reaping when the child has exited (waiting for it when `blocking`).
  private func reap(blocking: Bool) -> Int32? {
    state.withLock { s in
      if let status = s.status { return status }
      guard s.pid != 0 else { return nil }
      var raw: Int32 = 0
      while true {
        let rc = waitpid(s.pid, &raw, blocking ? 0 : WNOHANG)
        if rc == s.pid {
          s.status = raw
          return raw
        }
        if rc == -1 && errno == EINTR { continue }
        return nil
      }
    }
  }

  /// Sends `signal` while the child runs.
  package func send(_ signal: Int32) {
    guard isRunning else { return }
    kill(pid, signal)
  }

  /// Blocks until the child exits; its exit status (or 128 + signal).
  @discardableResult
  package func wait() -> Int32 { Spawn.exitStatus(reap(blocking: true) ?? 0) }

  /// Waits up to `seconds`; the exit status (or 128 + signal), nil when still running.
  package func wait(within seconds: Double) -> Int32? {
    let end = monotonic() + seconds
    while true {
      if let raw = reap(blocking: false) { return Spawn.exitStatus(raw) }
      if monotonic() > end { return nil }
      usleep(5_000)
    }
  }

  /// Waits (bounded) for the child to exit; its exit status, or `128 + signal`. Kills it and
  /// throws when the bound passes.
  package func waitForExit(within seconds: Double = 30) throws -> Int32 {
    guard let status = wait(within: seconds) else {
      terminateForcibly()
      throw SetupError("\(name) (pid \(pid)) did not exit within \(seconds) s; killed")
    }
    return status
  }

  /// `signal`, then SIGKILL when it has not exited within `seconds`; the exit status.
  @discardableResult
  package func stop(_ signal: Int32 = SIGTERM, within seconds: Double = 30) -> Int32 {
    if let raw = reap(blocking: false) { return Spawn.exitStatus(raw) }
    kill(pid, signal)
    if let code = wait(within: seconds) { return code }
    FileHandle.standardError.write(Data("\(name) (pid \(pid)) ignored signal \(signal); killed\n".utf8))
    kill(pid, SIGKILL)
    return wait()
  }

  /// SIGKILL and reap, while it runs.
  package func terminateForcibly() {
    guard isRunning else { return }
    kill(pid, SIGKILL)
    wait()
  }

  package var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
  package var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  /// The last lines of stderr, for error messages.
  package func stderrTail(_ lines: Int = 8) -> String {
    stderr.split(separator: "\n").suffix(lines).joined(separator: "\n")
  }

  /// `DEV:INODE` of the child's stderr file, as systemd puts it in `$JOURNAL_STREAM`.
  package var stderrDeviceAndInode: String {
    get throws {
      var info = stat()
      guard stat(stderrPath, &info) == 0 else { throw SetupError.errno("stat \(stderrPath)") }
      return "\(info.st_dev):\(info.st_ino)"
    }
  }

  deinit { terminateForcibly() }
}

/// What a program that ran to its end left.
package struct ProcessOutput: Sendable {
  package var status: Int32
  package var stdout: String
  package var stderr: String
}

extension ChildProcess {
  /// Runs `executable` to its end with exactly `environment`, bounded by `seconds` (SIGKILL
  /// then, and a ``SetupError``); output through files in a directory of its own (a pipe read
  /// only at exit would stall a child that writes more than a pipe holds).
  package static func run(
    _ executable: String, _ arguments: [String], environment: [String: String], within seconds: Double = 120
  ) throws -> ProcessOutput {
    let dir = try TempDirectory("tb-run")
    let child = ChildProcess(
      executable, arguments, environment: environment, stdout: dir.file("stdout"), stderr: dir.file("stderr"))
    try child.start()
    let status = try child.waitForExit(within: seconds)
    return ProcessOutput(status: status, stdout: child.stdout, stderr: child.stderr)
  }
}

/// Runs a program to its end (bounded) with ``ChildProcess/minimalEnvironment(_:)`` plus
/// `environment`; its exit status, stdout and stderr.
package func runToEnd(
  _ executable: String, _ arguments: [String], environment: [String: String] = [:],
  within seconds: Double = 120
) throws -> ProcessOutput {
  try ChildProcess.run(
    executable, arguments, environment: ChildProcess.minimalEnvironment(environment), within: seconds)
}

extension Spawn {
  /// The children of every thread of `pid` (a child is listed under the thread that spawned
  /// it: token-brokerd's fleet helper under whichever thread started it).
  package static func children(of pid: pid_t) -> [pid_t] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task -> [pid_t] in
      let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
      return text.split(separator: " ").compactMap {
        pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
      }
    }
  }
}

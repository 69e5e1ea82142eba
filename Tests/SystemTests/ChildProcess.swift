import Foundation
import Glibc
import Synchronization
import TokenBrokerTestSupport

/// A process the test started (`Spawn`: posix_spawn, only descriptors 0-2, reaped by its
/// own `waitpid`; not Foundation's `Process`, see `Spawn`), with stdout and stderr in files.
/// Killed (SIGKILL) on deinit if still running, so that no test leaves one behind, even when
/// it fails half-way.
final class ChildProcess: @unchecked Sendable {
  let executable: String
  let arguments: [String]
  /// The whole environment of the child (nothing is inherited); may be changed before `start`.
  var environment: [String: String]
  let stdoutPath: String
  let stderrPath: String
  private let state = Mutex<(pid: pid_t, status: Int32?)>((0, nil))

  init(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    outputIn directory: TestDirectory, name: String
  ) throws {
    stdoutPath = directory.file("\(name).stdout")
    stderrPath = directory.file("\(name).stderr")
    for path in [stdoutPath, stderrPath] {
      guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw SetupError("cannot create \(path)")
      }
    }
    self.executable = executable
    self.arguments = arguments
    var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SWIFT_BACKTRACE": "enable=no"]
    env.merge(environment) { _, new in new }
    self.environment = env
  }

  /// `DEV:INODE` of the child's stderr file, as systemd puts it in `$JOURNAL_STREAM`.
  var stderrDeviceAndInode: String {
    get throws {
      guard let info = fileStatus(stderrPath) else { throw SetupError.errno("stat \(stderrPath)") }
      return "\(info.st_dev):\(info.st_ino)"
    }
  }

  func start() throws {
    let pid = try Spawn.start(
      executable, arguments, environment: environment, stdout: stdoutPath, stderr: stderrPath)
    state.withLock { $0 = (pid, nil) }
  }

  var pid: Int32 { state.withLock { $0.pid } }

  /// Reaps the child when it has exited (never blocks).
  var isRunning: Bool {
    state.withLock { s in
      guard s.pid != 0, s.status == nil else { return false }
      var status: Int32 = 0
      if waitpid(s.pid, &status, WNOHANG) == s.pid { s.status = status }
      return s.status == nil
    }
  }

  func send(_ signal: Int32) {
    guard isRunning else { return }
    kill(pid, signal)
  }

  /// Waits (bounded) for the child to exit; its exit status, or `128 + signal` when a signal
  /// ended it. Kills it and throws when the bound passes.
  func waitForExit(within seconds: Double = 30) throws -> Int32 {
    do {
      try poll("\((executable as NSString).lastPathComponent) to exit", within: seconds) { !isRunning }
    } catch {
      terminateForcibly()
      throw error
    }
    return Spawn.exitStatus(state.withLock { $0.status } ?? 0)
  }

  func terminateForcibly() {
    guard isRunning else { return }
    state.withLock { s in
      kill(s.pid, SIGKILL)
      s.status = Spawn.waitBlocking(s.pid)
    }
  }

  var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
  var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  deinit { terminateForcibly() }
}

/// Runs a program to its end; its exit status, stdout and stderr.
func runToEnd(
  _ executable: String, _ arguments: [String], environment: [String: String] = [:],
  in directory: TestDirectory
) throws -> (status: Int32, stdout: String, stderr: String) {
  let child = try ChildProcess(
    executable, arguments, environment: environment, outputIn: directory, name: "run-\(uniqueSuffix())")
  try child.start()
  let status = try child.waitForExit()
  return (status, child.stdout, child.stderr)
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: a thread collects every
/// notification in order.
final class NotifySocket: @unchecked Sendable {
  let path: String
  private let fd: Int32
  private let inbox = Inbox()
  private var thread: Thread?

  private final class Inbox: Sendable {
    let messages = Mutex<[String]>([])
    let stopped = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
  }

  init(path: String) throws {
    self.path = path
    fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SetupError.errno("socket") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      close(fd)
      throw SetupError("socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0 else {
      close(fd)
      throw SetupError.errno("bind \(path)")
    }
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let thread = Thread { [fd, inbox] in
      var buffer = [UInt8](repeating: 0, count: 65536)
      while !inbox.stopped.load(ordering: .relaxed) {
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { continue }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        inbox.messages.withLock { $0.append(text) }
      }
      inbox.finished.store(true, ordering: .relaxed)
    }
    self.thread = thread
    thread.start()
  }

  /// Every notification so far.
  var all: [String] { inbox.messages.withLock { $0 } }

  /// The `KEY=value` lines of every notification so far, in order.
  var assignments: [String] { all.flatMap { $0.split(separator: "\n").map(String.init) } }

  /// The first notification at index `from` or later that has the line `line` (or a line
  /// with that prefix when `line` ends in `=`); waits (bounded) for it. Returns its index.
  @discardableResult
  func wait(for line: String, from: Int = 0, within seconds: Double = 20) throws -> (
    index: Int, message: String
  ) {
    var found: (Int, String)?
    do {
      try poll("\(line) on NOTIFY_SOCKET", within: seconds) {
        let list = all
        guard from < list.count else { return false }
        for i in from..<list.count where Self.has(list[i], line) {
          found = (i, list[i])
          return true
        }
        return false
      }
    } catch {
      throw SetupError("no notification with \(line) after #\(from); received: \(all)")
    }
    return found!
  }

  /// The first `STATUS=` at index `from` or later whose text satisfies `condition`.
  @discardableResult
  func waitForStatus(
    from: Int = 0, within seconds: Double = 20, _ what: String, _ condition: (String) -> Bool
  ) throws -> (index: Int, status: String) {
    var found: (Int, String)?
    do {
      try poll("STATUS= \(what)", within: seconds) {
        let list = all
        guard from < list.count else { return false }
        for i in from..<list.count {
          for l in list[i].split(separator: "\n") where l.hasPrefix("STATUS=") {
            let text = String(l.dropFirst("STATUS=".count))
            if condition(text) {
              found = (i, text)
              return true
            }
          }
        }
        return false
      }
    } catch {
      throw SetupError("no STATUS= \(what) after #\(from); received: \(all)")
    }
    return found!
  }

  static func has(_ message: String, _ line: String) -> Bool {
    message.split(separator: "\n").contains { line.hasSuffix("=") ? $0.hasPrefix(line) : $0 == line }
  }

  deinit {
    inbox.stopped.store(true, ordering: .relaxed)
    while thread != nil && !inbox.finished.load(ordering: .relaxed) { usleep(10_000) }
    close(fd)
    unlink(path)
  }
}

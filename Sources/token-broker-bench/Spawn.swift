import Foundation
import Synchronization
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Failures of the bench's own machinery (not measurements).
struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Seconds on CLOCK_MONOTONIC.
func monotonic() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A minimal environment for children: nothing of the bench's own is inherited.
func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
  var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]
  env["SWIFT_BACKTRACE"] = "enable=no"
  env.merge(extra) { _, new in new }
  return env
}

/// A process started with `Spawn` (posix_spawn: no fork of the multi-threaded bench), stdin
/// from /dev/null, stdout and stderr to files or /dev/null, no other descriptor. Reaped by
/// `wait`/`stop`.
final class Child: Sendable {
  let pid: pid_t
  let name: String
  let stdoutPath: String?
  let stderrPath: String?
  private let status = Mutex<Int32?>(nil)

  init(
    _ argv: [String], environment: [String: String], stdout: String? = nil, stderr: String? = nil,
    name: String? = nil
  ) throws {
    self.name = name ?? URL(fileURLWithPath: argv[0]).lastPathComponent
    self.stdoutPath = stdout
    self.stderrPath = stderr
    self.pid = try Self.spawn(argv, environment: environment, stdout: stdout, stderr: stderr)
  }

  private static func spawn(
    _ argv: [String], environment: [String: String], stdout: String?, stderr: String?
  ) throws -> pid_t {
    do {
      return try Spawn.start(
        argv[0], Array(argv.dropFirst()), environment: environment, stdout: stdout ?? "/dev/null",
        stderr: stderr ?? "/dev/null")
    } catch {
      throw BenchError(error.description)
    }
  }

  /// The raw wait status once reaped.
  private func reap(blocking: Bool) -> Int32? {
    status.withLock { stored in
      if let stored { return stored }
      var raw: Int32 = 0
      while true {
        let rc = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
        if rc == pid {
          stored = raw
          return raw
        }
        if rc == -1 && errno == EINTR { continue }
        return nil
      }
    }
  }

  var isRunning: Bool { reap(blocking: false) == nil }

  /// Exit status, or 128 + signal.
  static func decode(_ raw: Int32) -> Int32 {
    raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
  }

  /// Blocks until the child exits; its exit status (or 128 + signal).
  @discardableResult
  func wait() -> Int32 { Self.decode(reap(blocking: true) ?? 0) }

  /// Waits up to `seconds`; nil when still running.
  func wait(within seconds: Double) -> Int32? {
    let end = monotonic() + seconds
    while true {
      if let raw = reap(blocking: false) { return Self.decode(raw) }
      if monotonic() > end { return nil }
      usleep(5_000)
    }
  }

  /// `signal`, then SIGKILL when it has not exited within `seconds`.
  @discardableResult
  func stop(_ signal: Int32 = SIGTERM, within seconds: Double = 30) -> Int32 {
    if let raw = reap(blocking: false) { return Self.decode(raw) }
    kill(pid, signal)
    if let code = wait(within: seconds) { return code }
    FileHandle.standardError.write(
      Data("bench: \(name) (pid \(pid)) ignored signal \(signal); killed\n".utf8))
    kill(pid, SIGKILL)
    return wait()
  }

  var stdout: String { stdoutPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }
  var stderr: String { stderrPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }

  /// The last lines of stderr, for error messages.
  var stderrTail: String {
    stderr.split(separator: "\n").suffix(8).joined(separator: "\n")
  }
}

/// Runs a command to its end (bounded) in `dir`; status, stdout, stderr.
func runToEnd(
  _ argv: [String], environment: [String: String] = childEnvironment(), in dir: TempDir,
  timeout: Double = 600
) throws -> (status: Int32, stdout: String, stderr: String) {
  let tag = "\(URL(fileURLWithPath: argv[0]).lastPathComponent)-\(UInt32.random(in: 0...UInt32.max))"
  let child = try Child(
    argv, environment: environment, stdout: dir.file(tag + ".out"), stderr: dir.file(tag + ".err"))
  guard let status = child.wait(within: timeout) else {
    child.stop(SIGKILL)
    throw BenchError("\(argv.joined(separator: " ")) did not finish within \(Int(timeout)) s")
  }
  return (status, child.stdout, child.stderr)
}

/// Wall time of one whole process, spawn to reaped exit, stdout and stderr to /dev/null.
func wallTime(_ argv: [String], environment: [String: String]) throws -> (seconds: Double, status: Int32) {
  let start = monotonic()
  let child = try Child(argv, environment: environment)
  let status = child.wait()
  return (monotonic() - start, status)
}

/// A fresh, short directory under /tmp (socket paths stay far below 108 bytes).
final class TempDir: Sendable {
  let path: String

  init(_ prefix: String = "tbb") throws {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
      throw BenchError("mkdtemp: \(String(cString: strerror(errno)))")
    }
    path = String(cString: made)
  }

  func file(_ name: String) -> String { path + "/" + name }

  /// Writes `text` to `name` with `mode` (0600: literal secrets are allowed then).
  @discardableResult
  func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws -> String {
    let target = file(name)
    let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw BenchError("open \(target): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    fchmod(fd, mode)
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else {
      throw BenchError("write \(target): \(String(cString: strerror(errno)))")
    }
    return target
  }

  func makeDirectory(_ name: String, mode: mode_t = 0o700) throws -> String {
    let p = file(name)
    guard mkdir(p, mode) == 0 else { throw BenchError("mkdir \(p): \(String(cString: strerror(errno)))") }
    return p
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs blocking work on a thread of its own, off the cooperative pool (which the
/// in-process fake upstream's callers and the harness's actors need).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread { continuation.resume(with: Result { try body() }) }.start()
  }
}

/// Runs `body(0..<count)` on `count` threads of their own at once (blocking I/O: a
/// concurrentPerform would run only as many as there are cores) and waits for all.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for i in 0..<count {
    group.enter()
    Thread {
      body(i)
      group.leave()
    }.start()
  }
  group.wait()
}

/// Progress notes go to stderr; stdout holds only the tables.
func note(_ text: String) {
  FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
}

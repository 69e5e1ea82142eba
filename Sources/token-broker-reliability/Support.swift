import Foundation
import TokenBrokerClient

#if canImport(Glibc)
  import Glibc
#endif

/// Runs async work from the synchronous suites (the main thread, never the cooperative pool).
enum Blocking {
  private final class Box<T>: @unchecked Sendable {
    var value: T?
  }

  static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let box = Box<Result<T, any Error>>()
    Task {
      do { box.value = .success(try await body()) } catch { box.value = .failure(error) }
      done.signal()
    }
    done.wait()
    return try box.value!.get()
  }
}

struct SuiteFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Monotonic seconds.
func monotonic() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func sleepMilliseconds(_ ms: Double) {
  guard ms > 0 else { return }
  usleep(useconds_t(ms * 1000))
}

func log(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// A short scratch directory under /tmp (socket paths hold at most 107 bytes).
func makeScratchDirectory(_ tag: String) throws -> String {
  var template = Array("/tmp/tbr-\(tag)-XXXXXX".utf8CString)
  guard let made = mkdtemp(&template) else { throw SuiteFailure("cannot create a directory in /tmp") }
  let path = String(cString: made)
  chmod(path, 0o700)
  return path
}

/// Writes `text` to `path` with mode 0600 (the daemon accepts literal secrets only then).
func writePrivateFile(_ path: String, _ text: String) throws {
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
  guard fd >= 0 else { throw SuiteFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
  defer { close(fd) }
  fchmod(fd, 0o600)
  let bytes = Array(text.utf8)
  var written = 0
  while written < bytes.count {
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
    guard n > 0 else { throw SuiteFailure("cannot write \(path)") }
    written += n
  }
}

/// Lets this process (and the daemons it starts) open as many descriptors as allowed.
func raiseDescriptorLimit() {
  var limit = rlimit()
  getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
  limit.rlim_cur = limit.rlim_max
  setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// `[broker]` plus provider tables, as a TOML file the daemon reads.
struct DaemonConfig {
  var socket: String
  var stateDir: String
  var minValid = 0
  var requestTimeout = 5
  var logLevel = "info"
  var providers: [String] = []

  var text: String {
    var s = """
      [broker]
      socket = "\(socket)"
      state_dir = "\(stateDir)"
      min_valid = \(minValid)
      request_timeout = \(requestTimeout)
      log_level = "\(logLevel)"
      log_target = "console"

      """
    for p in providers { s += "\n" + p + "\n" }
    return s
  }
}

/// One `token-brokerd` child process.
final class DaemonProcess {
  let executable: String
  let arguments: [String]
  let logPath: String
  private(set) var pid: pid_t = 0
  private(set) var exitStatus: Int32?

  init(executable: String, arguments: [String], logPath: String) {
    self.executable = executable
    self.arguments = arguments
    self.logPath = logPath
  }

  /// The package's executables live next to this one.
  static func sibling(_ name: String) throws -> String {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let path = me.deletingLastPathComponent().appendingPathComponent(name).path
    guard access(path, X_OK) == 0 else {
      throw SuiteFailure("\(path) is not built; run `swift build` first (or pass --daemon PATH)")
    }
    return path
  }

  func start() throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var child: pid_t = 0
    let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
    guard rc == 0 else { throw SuiteFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
    pid = child
    exitStatus = nil
  }

  /// Exit status once the process ended (non-blocking).
  var hasExited: Bool {
    if exitStatus != nil { return true }
    guard pid > 0 else { return true }
    var status: Int32 = 0
    if waitpid(pid, &status, WNOHANG) == pid {
      exitStatus = status
      return true
    }
    return false
  }

  /// A readable account of how it ended.
  var exitDescription: String {
    guard let s = exitStatus else { return "running" }
    if s & 0x7F == 0 { return "exit \((s >> 8) & 0xFF)" }
    return "signal \(s & 0x7F)"
  }

  func kill9() {
    guard pid > 0, !hasExited else { return }
    kill(pid, SIGKILL)
    reap()
  }

  /// SIGTERM, then waits up to `timeout` seconds (SIGKILL after). Returns the exit status.
  @discardableResult
  func terminate(timeout: Double = 30) -> Int32? {
    guard pid > 0 else { return nil }
    if hasExited { return exitStatus }
    kill(pid, SIGTERM)
    let deadline = monotonic() + timeout
    while monotonic() < deadline {
      if hasExited { return exitStatus }
      sleepMilliseconds(2)
    }
    kill(pid, SIGKILL)
    reap()
    return nil
  }

  private func reap() {
    var status: Int32 = 0
    while true {
      let r = waitpid(pid, &status, 0)
      if r == pid {
        exitStatus = status
        return
      }
      if r < 0 && errno != EINTR { return }
    }
  }

  func logTail(_ lines: Int = 15) -> String {
    guard let data = FileManager.default.contents(atPath: logPath) else { return "(no log)" }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "\n")
  }

  /// Resident set size in KiB, from /proc.
  var rssKiB: Int? { Self.procStatus(pid, "VmRSS") }
  var threads: Int? { Self.procStatus(pid, "Threads") }
  var openDescriptors: Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
  }

  static func procStatus(_ pid: pid_t, _ key: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
      return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
    }
    return nil
  }
}

/// The daemon's socket API, as root sees it.
struct SocketAPIClient {
  var socketPath: String

  func request(_ method: String, _ path: String, timeout: Int = 10) throws -> UnixHTTPClient.Response {
    var client = UnixHTTPClient(socketPath: socketPath)
    client.timeout = timeout
    do { return try client.request(method, path) } catch {
      throw SuiteFailure("\(method) \(path): \(error)")
    }
  }

  /// `state` of one provider in GET /v1/status, or nil when the daemon does not answer.
  func state(of provider: String) -> String? {
    guard let r = try? request("GET", "/v1/status", timeout: 5), r.status == 200,
      let json = JSONValue.parse(r.body), let providers = json["providers"]?.array
    else { return nil }
    return providers.first { $0["name"]?.string == provider }?["state"]?.string
  }

  /// Polls GET /v1/status until `provider` has left `pending`/`refreshing`, the daemon
  /// exits, or `timeout` seconds pass.
  func waitSettled(_ provider: String, daemon: DaemonProcess, timeout: Double) throws -> String {
    let deadline = monotonic() + timeout
    while monotonic() < deadline {
      if daemon.hasExited {
        throw SuiteFailure(
          "token-brokerd ended (\(daemon.exitDescription)) before it was ready:\n\(daemon.logTail())")
      }
      if let s = state(of: provider), s != "pending", s != "refreshing" { return s }
      sleepMilliseconds(3)
    }
    throw SuiteFailure("token-brokerd was not ready within \(Int(timeout)) s:\n\(daemon.logTail())")
  }
}

/// A JSON summary line for scripts and the tests: `RESULT {...}` on stdout.
func printResult(_ fields: [(String, Any)]) {
  var object: [String: Any] = [:]
  for (k, v) in fields { object[k] = v }
  let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
  FileHandle.standardOutput.write(Data(("RESULT " + String(decoding: data, as: UTF8.self) + "\n").utf8))
}

import Foundation
import TokenBrokerClient
import TokenBrokerTestSupport

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

func sleepMilliseconds(_ ms: Double) {
  guard ms > 0 else { return }
  usleep(useconds_t(ms * 1000))
}

func log(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
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
  private var child: ChildProcess?

  init(executable: String, arguments: [String], logPath: String) {
    self.executable = executable
    self.arguments = arguments
    self.logPath = logPath
  }

  /// Starts the daemon (again): this process's environment, stdout and stderr appended to
  /// the log.
  func start() throws {
    let child = ChildProcess(
      executable, arguments, environment: ProcessInfo.processInfo.environment, stdout: logPath,
      stderr: logPath, append: true)
    try child.start()
    self.child = child
  }

  var pid: pid_t { child?.pid ?? 0 }

  /// True once the process ended (or before it started); reaps it (never blocks).
  var hasExited: Bool { !(child?.isRunning ?? false) }

  /// A readable account of how it ended.
  var exitDescription: String { child?.rawStatus.map(Spawn.describe) ?? "running" }

  func kill9() { child?.terminateForcibly() }

  /// SIGTERM, then waits up to `timeout` seconds (SIGKILL after); the exit status.
  @discardableResult
  func terminate(timeout: Double = 30) -> Int32? { child?.stop(SIGTERM, within: timeout) }

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
      throw SetupError("\(method) \(path): \(error)")
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
        throw SetupError(
          "token-brokerd ended (\(daemon.exitDescription)) before it was ready:\n\(daemon.logTail())")
      }
      if let s = state(of: provider), s != "pending", s != "refreshing" { return s }
      sleepMilliseconds(3)
    }
    throw SetupError("token-brokerd was not ready within \(Int(timeout)) s:\n\(daemon.logTail())")
  }
}

/// A JSON summary line for scripts and the tests: `RESULT {...}` on stdout.
func printResult(_ fields: [(String, Any)]) {
  var object: [String: Any] = [:]
  for (k, v) in fields { object[k] = v }
  let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
  FileHandle.standardOutput.write(Data(("RESULT " + String(decoding: data, as: UTF8.self) + "\n").utf8))
}

import Foundation
import Glibc
import Synchronization
import Testing

/// Every suite of this target is nested in this one: one test at a time (each starts daemons,
/// journald and fake upstreams), and a journald the tests started is stopped at the end.
@Suite(.serialized, JournaldScope()) struct SystemSuite {}

/// Failures of the test helpers themselves.
struct SetupError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }

  static func errno(_ what: String) -> SetupError {
    SetupError("\(what): \(String(cString: strerror(Glibc.errno)))")
  }
}

/// The built `token-brokerd` and `tokenctl`: next to the test bundle (in `swift test` the
/// products and the `.xctest` share the debug directory), or in `$TOKEN_BROKER_BIN_DIR`.
enum Binaries {
  static let directory: Result<String, SetupError> = {
    var candidates: [String] = []
    if let dir = ProcessInfo.processInfo.environment["TOKEN_BROKER_BIN_DIR"], !dir.isEmpty {
      candidates.append(dir)
    }
    let me = URL(fileURLWithPath: resolved(CommandLine.arguments[0]))
    candidates.append(me.deletingLastPathComponent().path)
    let bundle = Bundle.main.bundleURL.resolvingSymlinksInPath()
    candidates.append(bundle.path)
    candidates.append(bundle.deletingLastPathComponent().path)
    // A bundle directory on other platforms: .../debug/X.xctest/Contents/MacOS/X.
    var up = me.deletingLastPathComponent()
    for _ in 0..<3 {
      up = up.deletingLastPathComponent()
      candidates.append(up.path)
    }
    for dir in candidates where access(dir + "/token-brokerd", X_OK) == 0 {
      return .success(dir)
    }
    return .failure(
      SetupError(
        "token-brokerd is not built next to the tests (looked in \(candidates.joined(separator: ", "))): "
          + "run `swift build --build-tests` first, or set TOKEN_BROKER_BIN_DIR"))
  }()

  static func path(_ name: String) throws -> String {
    let dir = try directory.get()
    let path = dir + "/" + name
    guard access(path, X_OK) == 0 else { throw SetupError("\(path) is missing: build the \(name) product") }
    return path
  }

  static var tokenBrokerd: String { get throws { try path("token-brokerd") } }

  static let socketActivate = "/usr/bin/systemd-socket-activate"

  private static func resolved(_ path: String) -> String {
    guard let p = realpath(path, nil) else { return path }
    defer { free(p) }
    return String(cString: p)
  }
}

/// A fresh directory under /tmp (short: socket paths must stay below 108 bytes); removed on
/// deinit.
final class TestDirectory {
  let path: String

  init() throws {
    var template = Array("/tmp/tbst-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw SetupError.errno("mkdtemp") }
    path = String(cString: made)
  }

  func file(_ name: String) -> String { path + "/" + name }

  /// Writes `text` to `name` with `mode` (0600 unless told: literal secrets need it).
  @discardableResult
  func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws -> String {
    let target = file(name)
    let temporary = target + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SetupError.errno("open \(temporary)") }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, mode)
    close(fd)
    guard written == bytes.count else { throw SetupError.errno("write \(temporary)") }
    // Rename, so the daemon never reads a half-written file.
    guard rename(temporary, target) == 0 else { throw SetupError.errno("rename \(target)") }
    return target
  }

  deinit {
    try? FileManager.default.removeItem(atPath: path)
  }
}

/// A random suffix for names that must be unique in the (persistent) journal.
func uniqueSuffix() -> String {
  String(UInt64.random(in: 0...UInt64.max), radix: 16)
}

/// Runs blocking work (sockets, child processes, journalctl) on its own thread, off the
/// cooperative pool.
@discardableResult
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread {
      continuation.resume(with: Result { try body() })
    }
    thread.start()
  }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass (a bound against hanging,
/// not a timing assertion).
func poll(_ what: String, within seconds: Double = 20, _ condition: () throws -> Bool) throws {
  let deadline = Date().addingTimeInterval(seconds)
  while true {
    if try condition() { return }
    guard Date() < deadline else { throw SetupError("timed out waiting for \(what)") }
    usleep(20_000)
  }
}

/// `stat(2)` of a path, nil when it does not exist.
func fileStatus(_ path: String) -> stat? {
  var info = stat()
  return lstat(path, &info) == 0 ? info : nil
}

/// A group other than root's that exists here (for `socket_group`), with its gid.
func someGroup() -> (name: String, gid: gid_t)? {
  for name in ["nogroup", "daemon", "nobody", "users", "adm"] {
    if let g = getgrnam(name) { return (name, g.pointee.gr_gid) }
  }
  return nil
}

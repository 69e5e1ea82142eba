import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// nginx (Debian's `nginx-light`) answering fixed bodies on a Unix socket: the reference
/// the broker's serving path is measured against.
final class NginxReference: Sendable {
  let child: ChildProcess
  let socket: String
  let dir: TempDirectory
  let version: String

  /// The nginx binary, installing `nginx-light` with apt-get when it is missing. Throws
  /// with the reason when it cannot be had.
  static func locate(_ bench: BenchEnvironment) throws -> String {
    if let p = BenchEnvironment.which("nginx") { return p }
    _ = bench.aptInstall(["nginx-light"], reason: "nginx is missing (the serving reference)")
    guard let p = BenchEnvironment.which("nginx") else {
      throw SetupError("nginx is not installed and `apt-get install nginx-light` did not provide it")
    }
    return p
  }

  /// Starts nginx with one `location = PATH { return 200 'BODY'; }` per entry. Behind a
  /// `wrapper` (valgrind) it runs as one process (`master_process off`), so the wrapper sees
  /// every answer, and is given longer to start.
  static func start(
    _ bench: BenchEnvironment, bodies: [(path: String, body: [UInt8])], wrapper: [String] = []
  ) throws -> NginxReference {
    let binary = try locate(bench)
    let dir = try TempDirectory("tbn")
    let socket = dir.file("n.sock")
    var locations = ""
    for (path, body) in bodies {
      locations += "    location = \(path) { return 200 '\(escape(body))'; }\n"
    }
    // Same shape as the broker: workers = cores, no access log, keep-alive without a cap
    // on requests per connection (nginx's default of 1,000 would close udsload's connections).
    let conf = """
      daemon off;
      \(wrapper.isEmpty ? "worker_processes auto;" : "master_process off;")
      pid \(dir.file("nginx.pid"));
      error_log \(dir.file("error.log")) warn;
      events { worker_connections 1024; }
      http {
        access_log off;
        default_type application/json;
        keepalive_requests 100000000;
        keepalive_timeout 75s;
        client_body_temp_path \(dir.file("body"));
        proxy_temp_path \(dir.file("proxy"));
        fastcgi_temp_path \(dir.file("fastcgi"));
        server {
          listen unix:\(socket);
      \(locations)    location / { return 404; }
        }
      }

      """
    let confPath = try dir.write("nginx.conf", conf, mode: 0o644)
    let version =
      (try? runToEnd(binary, ["-v"], within: 10))?.stderr
      .trimmingCharacters(in: .whitespacesAndNewlines) ?? "nginx"
    let child = try ChildProcess.start(
      wrapper + [binary, "-p", dir.path, "-e", dir.file("error.log"), "-c", confPath],
      environment: ChildProcess.minimalEnvironment(),
      stderr: dir.file("nginx.stderr"), name: "nginx")
    let end = monotonic() + (wrapper.isEmpty ? 10 : 120)
    while monotonic() < end {
      if let fd = try? connectUnix(socket) {
        close(fd)
        return NginxReference(child: child, socket: socket, dir: dir, version: version)
      }
      if !child.isRunning { break }
      usleep(10_000)
    }
    child.stop(SIGKILL)
    let log = (try? String(contentsOfFile: dir.file("error.log"), encoding: .utf8)) ?? ""
    throw SetupError("nginx did not listen on \(socket): \(child.stderrTail()) \(log.suffix(600))")
  }

  private init(child: ChildProcess, socket: String, dir: TempDirectory, version: String) {
    self.child = child
    self.socket = socket
    self.dir = dir
    self.version = version
  }

  /// The body as an nginx single-quoted string of exactly the same length once unescaped:
  /// `$` (a variable), `'` and `\` become `x`, a newline is written `\n`.
  static func escape(_ body: [UInt8]) -> String {
    var out = ""
    for b in body {
      switch b {
      case UInt8(ascii: "$"), UInt8(ascii: "'"), UInt8(ascii: "\\"): out += "x"
      case 0x0A: out += "\\n"
      case 0x20...0x7E: out.append(Character(UnicodeScalar(b)))
      default: out += "x"
      }
    }
    return out
  }

  /// Length of the body nginx serves for `path`.
  func bodyLength(_ path: String) throws -> Int {
    let fd = try connectUnix(socket)
    defer { close(fd) }
    try sendAll(fd, Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n <= 0 { break }
      data += chunk[0..<n]
    }
    let text = String(decoding: data, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 200"), let split = text.range(of: "\r\n\r\n") else {
      throw SetupError("nginx GET \(path): \(text.prefix(200))")
    }
    return text[split.upperBound...].utf8.count
  }

  func stop() {
    // SIGTERM: fast shutdown of the master and its workers.
    child.stop(SIGTERM, within: 10)
  }
}

import Foundation
import Synchronization
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The smallest OpenID provider oidc-agent accepts, on 127.0.0.1: a discovery document
/// and a token endpoint that answers every refresh with a one-hour access token.
final class MiniOIDCProvider: Sendable {
  let port: Int
  private let fd: Int32
  private let tokenRequests = Atomic<Int>(0)
  let accessToken =
    "at_oidc_" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + "_" + UUID().uuidString

  var issuer: String { "http://127.0.0.1:\(port)" }
  var tokenRequestCount: Int { tokenRequests.load(ordering: .relaxed) }

  init() throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SetupError("socket: \(String(cString: strerror(errno)))") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0
      }
    }
    guard ok else {
      close(fd)
      throw SetupError("cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
    }
    self.fd = fd
    port = Int(UInt16(bigEndian: addr.sin_port))
    Thread { [self] in acceptLoop() }.start()
  }

  private func acceptLoop() {
    while true {
      let c = accept(fd, nil, nil)
      if c < 0 {
        if errno == EINTR { continue }
        return
      }
      serve(c)
      close(c)
    }
  }

  private func serve(_ c: Int32) {
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    var head: String?
    var wanted = 0
    while true {
      let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress!, $0.count, 0) }
      if n <= 0 { return }
      data += chunk[0..<n]
      let text = String(decoding: data, as: UTF8.self)
      if head == nil, let r = text.range(of: "\r\n\r\n") {
        head = String(text[..<r.lowerBound])
        wanted = text[..<r.upperBound].utf8.count
        for line in head!.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
          wanted += Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
        }
      }
      if head != nil && data.count >= wanted { break }
    }
    let target = head!.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
    let body: String
    if target.hasPrefix("/.well-known/openid-configuration") {
      let i = issuer
      body = """
        {"issuer":"\(i)","authorization_endpoint":"\(i)/auth","token_endpoint":"\(i)/token",\
        "userinfo_endpoint":"\(i)/userinfo","jwks_uri":"\(i)/jwks","revocation_endpoint":"\(i)/revoke",\
        "scopes_supported":["openid","offline_access"],"grant_types_supported":["refresh_token"],\
        "response_types_supported":["code"],"code_challenge_methods_supported":["S256"]}
        """
    } else if target.hasPrefix("/token") {
      tokenRequests.add(1, ordering: .relaxed)
      body = """
        {"access_token":"\(accessToken)","token_type":"Bearer","expires_in":3600,\
        "refresh_token":"rt_bench","scope":"openid offline_access"}
        """
    } else {
      body = "{}"
    }
    let response =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
      + "Connection: close\r\n\r\n" + body
    try? sendAll(c, Array(response.utf8))
  }

  func stop() {
    shutdown(fd, Int32(SHUT_RDWR))
    close(fd)
  }
}

/// Debian's oidc-agent, set up against ``MiniOIDCProvider`` with a refresh token (no
/// browser, no real provider): `oidc-token NAME` then asks the agent over its Unix socket
/// for the cached access token, as `tokenctl token NAME` asks token-brokerd.
final class OIDCAgentReference: Sendable {
  let agent: ChildProcess
  let provider: MiniOIDCProvider
  let dir: TempDirectory
  let oidcToken: String
  let environment: [String: String]
  let version: String
  static let account = "bench"

  static func start(_ bench: BenchEnvironment) throws -> OIDCAgentReference {
    if BenchEnvironment.which("oidc-token") == nil {
      _ = bench.aptInstall(["oidc-agent-cli"], reason: "oidc-token is missing (the tokenctl reference)")
    }
    guard let token = BenchEnvironment.which("oidc-token"),
      let agentBinary = BenchEnvironment.which("oidc-agent"),
      let gen = BenchEnvironment.which("oidc-gen")
    else { throw SetupError("oidc-agent-cli (oidc-agent, oidc-gen, oidc-token) is not installed") }
    let dir = try TempDirectory("tbo")
    let config = try dir.makeDirectory("config")
    let password = try dir.write("pw", "bench-password\n")
    let socket = dir.file("agent.sock")
    let env = ChildProcess.minimalEnvironment([
      "HOME": dir.path, "OIDC_CONFIG_DIR": config, "OIDC_SOCK": socket,
    ])
    let provider = try MiniOIDCProvider()
    let agent: ChildProcess
    do {
      agent = try ChildProcess.start(
        [agentBinary, "-d", "--socket-path=\(socket)", "--no-autoload", "--quiet"], environment: env,
        stdout: dir.file("agent.out"), stderr: dir.file("agent.err"), name: "oidc-agent")
    } catch {
      provider.stop()
      throw error
    }
    let reference = OIDCAgentReference(
      agent: agent, provider: provider, dir: dir, oidcToken: token, environment: env,
      version: (try? runToEnd(token, ["--version"], environment: env, within: 10))?.stdout
        .split(separator: "\n").first.map(String.init) ?? "oidc-agent")
    do {
      try reference.configure(gen: gen, socket: socket, password: password)
    } catch {
      reference.stop()
      throw error
    }
    return reference
  }

  private init(
    agent: ChildProcess, provider: MiniOIDCProvider, dir: TempDirectory, oidcToken: String,
    environment: [String: String],
    version: String
  ) {
    self.agent = agent
    self.provider = provider
    self.dir = dir
    self.oidcToken = oidcToken
    self.environment = environment
    self.version = version
  }

  private func configure(gen: String, socket: String, password: String) throws {
    let end = monotonic() + 10
    while access(socket, F_OK) != 0 {
      guard agent.isRunning, monotonic() < end else {
        throw SetupError("oidc-agent did not create \(socket): \(agent.stderrTail())")
      }
      usleep(10_000)
    }
    let r = try runToEnd(
      gen,
      [
        Self.account, "--issuer=\(provider.issuer)", "--client-id=client-1",
        "--client-secret=s3cret-client",
        "--rt=rt_bench", "--scope=openid offline_access", "--pw-file=\(password)", "--confirm-default",
        "--prompt=none", "--no-save",
      ], environment: environment, within: 60)
    guard r.status == 0 else { throw SetupError("oidc-gen failed (\(r.status)): \(r.stdout) \(r.stderr)") }
    let check = try runToEnd(oidcToken, [Self.account], environment: environment, within: 10)
    guard check.status == 0,
      check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == provider.accessToken
    else {
      throw SetupError("oidc-token \(Self.account) did not print the token: \(check.stdout) \(check.stderr)")
    }
  }

  var argv: [String] { [oidcToken, Self.account] }

  func stop() {
    agent.stop(SIGTERM, within: 10)
    provider.stop()
  }
}

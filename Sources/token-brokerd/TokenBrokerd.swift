import Logging
import NIOPosix
import TokenBrokerCore
import TokenBrokerDaemon
import TokenBrokerEngine
import TokenBrokerServer

#if canImport(Glibc)
  import Glibc
#endif

@main
struct TokenBrokerd {
  let options: DaemonOptions
  var config: String { options.config }
  var checkConfig: Bool { options.checkConfig }
  var socket: String? { options.socket }
  var startupTimeout: Double { options.startupTimeout }

  /// Exits 0, 78 (configuration, a usage error included: the unit's
  /// `RestartPreventExitStatus=78` stops a restart loop after a bad `ExecStart=` edit) or 1.
  static func main() async {
    switch DaemonOptions.parse(Array(CommandLine.arguments.dropFirst())) {
    case .failure(let error):
      Output.standardError(error.description)
      exit(DaemonExit.config)
    case .success(.help):
      Output.standardOutput(DaemonOptions.help)
    case .success(.version):
      Output.standardOutput(BrokerVersion.current + "\n")
    case .success(.run(let options)):
      exit(await TokenBrokerd(options: options).run())
    }
  }

  func run() async -> Int32 {
    var loader = ConfigLoader(path: config)
    loader.socketOverride = socket
    loader.logLevelOverride = options.logLevel
    loader.logTargetOverride = options.logTarget
    if options.dev { return await runDev() }
    let loaded: LoadedConfig
    do {
      loaded = try loader.load()
    } catch {
      reportProblems(error.problems)
      return DaemonExit.config
    }
    if checkConfig {
      for w in loaded.warnings { Output.standardError("warning: \(w)\n") }
      var (problems, user) = serviceAccessProblems(loader, loaded)
      if let missing = Daemon.missingFleetHelper(loaded, path: config) { problems.append(missing) }
      guard problems.isEmpty else {
        reportProblems(problems)
        return DaemonExit.config
      }
      let checked = user.map { "; user \($0) can read it and every secret file" } ?? ""
      Output.standardOutput("\(config): ok (\(loaded.config.providers.count) providers\(checked))\n")
      return 0
    }
    let control = LogLevelControl()
    let logger = LogSetup.makeLogger(
      target: loaded.config.broker.logTarget, level: loaded.config.broker.logLevel, control: control)
    let daemon = Daemon(loader: loader, logger: logger, startupTimeout: startupTimeout, logLevel: control)
    return await daemon.run(loaded)
  }

  /// Run as root, `--check-config` also checks what the service will see: that the user of
  /// the installed token-broker.service (README "Install and run under systemd") can read the
  /// file and every secret file and write the state directory. Not as root, or with neither
  /// that unit nor its user here, there is nothing to check: no problems and no user.
  func serviceAccessProblems(_ loader: ConfigLoader, _ loaded: LoadedConfig) -> ([ConfigProblem], String?) {
    guard geteuid() == 0 else { return ([], nil) }
    let unit = ServiceUnit.installed()
    guard let user = ServiceUser.lookup(unit.user) else {
      guard unit.found else { return ([], nil) }
      let missing = ConfigProblem(
        path: config, line: 0,
        message:
          "user \(unit.user) of token-broker.service does not exist; run: systemd-sysusers token-broker.conf")
      return ([missing], nil)
    }
    guard user.uid != 0 else { return ([], nil) }
    let problems = loader.serviceAccessProblems(
      loaded, check: ServiceAccessCheck(user: user),
      managedStateDirectory: unit.found ? unit.stateDirectory : nil)
    return (problems, user.name)
  }

  /// `PATH:LINE: message` per problem on stderr, the same for --check-config and a refused
  /// start. When stderr is the journal each line carries `<3>` (error) for journald.
  func reportProblems(_ problems: [ConfigProblem]) {
    let prefix = !checkConfig && LogSetup.stderrIsJournal() ? "<3>" : ""
    var text = ""
    for p in problems { text += prefix + p.description + "\n" }
    let n = problems.count
    let what = "\(n) problem\(n == 1 ? "" : "s") in \(config)"
    text +=
      prefix + (checkConfig ? "token-brokerd: \(what)\n" : "token-brokerd: \(what); nothing was started\n")
    Output.standardError(text)
  }

  func runDev() async -> Int32 {
    let level = options.logLevel ?? .info
    let logger = LogSetup.makeLogger(target: .console, level: level)
    let issuer: HTTPServer
    do {
      issuer = try await HTTPServer.start(
        .tcp(host: "127.0.0.1", port: 0), group: MultiThreadedEventLoopGroup.singleton, handler: DemoIssuer(),
        logger: logger)
    } catch {
      logger.critical("cannot start the demo issuer: \(error)")
      return DaemonExit.failure
    }
    let cwd = Self.currentDirectory()
    let socketPath = socket ?? "./token-broker-dev.sock"
    let absolute =
      socketPath.hasPrefix("/")
      ? socketPath : cwd + "/" + socketPath.dropFirst(socketPath.hasPrefix("./") ? 2 : 0)
    // Predictable, so a demo's state survives a restart; `StateStore.prepare` refuses it when
    // another user made it or it is writable by others.
    let stateDir = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/token-broker-dev-\(getuid())"
    let (config, secrets) = DemoIssuer.config(port: issuer.port ?? 0, socket: absolute, stateDir: stateDir)
    let (access, _) = AccessResolver.resolve(config)
    let loaded = LoadedConfig(config: config, secrets: ["demo": secrets], access: access, warnings: [])
    let tokenctl = Self.siblingTokenctl()
    let daemon = Daemon(loader: nil, logger: logger, startupTimeout: startupTimeout) { _ in
      let text = """
        token-brokerd --dev: demo issuer on http://127.0.0.1:\(issuer.port ?? 0), provider "demo" (30 s tokens, refreshed at ~24 s)
        socket: \(socketPath)

        Try, in another terminal:
          \(tokenctl) --socket \(socketPath) token demo
          \(tokenctl) --socket \(socketPath) status
          curl -s --unix-socket \(socketPath) http://localhost/v1/token/demo

        Ctrl-C stops.

        """
      Output.standardOutput(text)
    }
    let status = await daemon.run(loaded)
    await issuer.close()
    return status
  }

  /// `tokenctl` next to this binary when it is there (a build tree), else on PATH.
  static func siblingTokenctl() -> String {
    let me = CommandLine.arguments[0]
    guard let slash = me.lastIndex(of: "/") else { return "tokenctl" }
    let candidate = String(me[..<slash]) + "/tokenctl"
    guard access(candidate, X_OK) == 0 else { return "tokenctl" }
    let cwd = currentDirectory() + "/"
    return candidate.hasPrefix(cwd) ? String(candidate.dropFirst(cwd.count)) : candidate
  }
}

extension TokenBrokerd {
  /// The working directory (getcwd), "." when it cannot be named.
  static func currentDirectory() -> String {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
    let named = buffer.withUnsafeMutableBufferPointer { raw in
      raw.withMemoryRebound(to: CChar.self) { getcwd($0.baseAddress, $0.count) != nil }
    }
    guard named else { return "." }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
  }
}

/// Whole writes to stdout and stderr, without Foundation's FileHandle.
enum Output {
  static func standardError(_ text: String) { write(2, text) }
  static func standardOutput(_ text: String) { write(1, text) }

  private static func write(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { return }
      bytes = bytes.dropFirst(n)
    }
  }
}

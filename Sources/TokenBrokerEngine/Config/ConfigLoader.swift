import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// A configuration ready to run: validated, secrets read, names resolved.
package struct LoadedConfig: Sendable {
  package var config: BrokerConfig
  package var secrets: [String: ResolvedSecrets]
  package var access: AccessPolicy
  /// Not fatal (e.g. an allow entry naming a user that does not exist).
  package var warnings: [String]
  /// `[fleet] store` and `key`, resolved (README "Fleet").
  package var fleet: FleetSecrets?

  package init(
    config: BrokerConfig, secrets: [String: ResolvedSecrets], access: AccessPolicy, warnings: [String],
    fleet: FleetSecrets? = nil
  ) {
    self.config = config
    self.secrets = secrets
    self.access = access
    self.warnings = warnings
    self.fleet = fleet
  }
}

/// Reads `broker.toml` and everything it points at. `--check-config`, start-up
/// and reload all go through here, so they report the same problems.
package struct ConfigLoader: Sendable {
  package var path: String
  package var resolver: SecretResolver
  /// `[broker]` overrides from the command line.
  package var socketOverride: String?
  package var logLevelOverride: LogLevel?
  package var logTargetOverride: LogTarget?
  package var stateDirOverride: String?

  /// The largest configuration read (thousands of providers fit in a few hundred KiB).
  static let maxBytes = 16 << 20

  package init(path: String, resolver: SecretResolver = SecretResolver()) {
    self.path = path
    self.resolver = resolver
  }

  package func load() throws(ConfigError) -> LoadedConfig {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let code = errno
      let reason = String(cString: strerror(code))
      var message = "cannot read the configuration: \(reason); pass --config PATH"
      // Permission denied: say as whom, and what gives this user the file (README
      // "Troubleshooting").
      if code == EACCES, let me = ServiceUser.current(),
        let p = ServiceAccessCheck(user: me).readProblem(path)
      {
        message =
          "cannot read the configuration as user \(me.name): \(reason) (\(p.detail)); run as root: \(p.fix)"
      }
      throw ConfigError(problems: [ConfigProblem(path: path, line: 0, message: message)])
    }
    var st = stat()
    fstat(fd, &st)
    let read = SystemIO.readAll(fd, limit: Self.maxBytes)
    close(fd)
    let bytes: [UInt8]
    switch read {
    case .success(let all): bytes = all
    case .failure(.tooLarge):
      throw ConfigError(problems: [
        ConfigProblem(
          path: path, line: 0,
          message:
            "the file is larger than \(Self.maxBytes / (1 << 20)) MiB; is it the configuration? pass --config PATH"
        )
      ])
    case .failure(.system(let code)):
      throw ConfigError(problems: [
        ConfigProblem(
          path: path, line: 0,
          message: "cannot read the configuration: \(SystemIO.describe(errno: code)); pass --config PATH"
        )
      ])
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw ConfigError(problems: [ConfigProblem(path: path, line: 0, message: "the file is not UTF-8 text")])
    }
    var config = try ConfigParser.parse(text, path: path, fileMode: UInt32(st.st_mode & 0o777))
    return try finish(&config, text: text)
  }

  /// Applies overrides, reads secrets and resolves names of an already parsed config.
  package func finish(_ config: inout BrokerConfig, text: String?) throws(ConfigError) -> LoadedConfig {
    if let socketOverride { config.broker.socket = socketOverride }
    if let logLevelOverride { config.broker.logLevel = logLevelOverride }
    if let logTargetOverride { config.broker.logTarget = logTargetOverride }
    if let stateDirOverride { config.broker.stateDir = stateDirOverride }
    var problems: [ConfigProblem] = []
    var secrets: [String: ResolvedSecrets] = [:]
    for p in config.providers {
      let (resolved, failures) = resolver.resolve(provider: p)
      secrets[p.name] = resolved
      for f in failures {
        let line = text.flatMap { ConfigParser.line(of: ["providers", p.name, f.key], in: $0) } ?? p.line
        problems.append(
          ConfigProblem(path: path, line: line, message: "providers.\(p.name).\(f.key): \(f.message)"))
      }
    }
    if let group = config.broker.socketGroup, AccessResolver.groupID(group) == nil {
      let line = text.flatMap { ConfigParser.line(of: ["broker", "socket_group"], in: $0) } ?? 0
      problems.append(
        ConfigProblem(
          path: path, line: line,
          message: "broker.socket_group: no group named \(group) (create it, e.g. with systemd-sysusers)"))
    }
    if let user = config.broker.httpsProxyUser, let source = config.broker.httpsProxyPassword,
      config.broker.httpsProxy != nil
    {
      let line = text.flatMap { ConfigParser.line(of: ["broker", "https_proxy_password"], in: $0) } ?? 0
      do {
        switch ProxyCredential.checkPassword(try resolver.resolve(source)) {
        case .success(let password):
          config.broker.httpsProxy?.credential = ProxyCredential(user: user, password: password)
        case .failure(let refused):
          problems.append(
            ConfigProblem(
              path: path, line: line, message: "broker.https_proxy_password: \(source) \(refused.why)"))
        }
      } catch {
        problems.append(
          ConfigProblem(path: path, line: line, message: "broker.https_proxy_password: \(error.description)"))
      }
    }
    var fleet: FleetSecrets?
    if let settings = config.fleet {
      func problem(_ key: String, _ message: String) {
        let line = text.flatMap { ConfigParser.line(of: ["fleet", key], in: $0) } ?? 0
        problems.append(ConfigProblem(path: path, line: line, message: "fleet.\(key): \(message)"))
      }
      var store: String?
      var key: [UInt8]?
      do {
        let text = try resolver.resolve(settings.store)
        do {
          _ = try PostgresDSN(parsing: text)
          store = text
        } catch {
          problem("store", error.description)
        }
      } catch {
        problem("store", error.description)
      }
      do {
        switch FleetSecrets.decodeKey(try resolver.resolve(settings.key)) {
        case .success(let bytes): key = bytes
        case .failure(let why): problem("key", why.description)
        }
      } catch {
        problem("key", error.description)
      }
      if let store, let key { fleet = FleetSecrets(store: store, key: key) }
    }
    guard problems.isEmpty else { throw ConfigError(problems: problems) }
    let (access, warnings) = AccessResolver.resolve(config)
    return LoadedConfig(config: config, secrets: secrets, access: access, warnings: warnings, fleet: fleet)
  }
}

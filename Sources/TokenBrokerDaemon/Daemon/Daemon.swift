import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerSystemd
import TokenBrokerUpstream

#if canImport(Glibc)
  import Glibc
#endif

/// Exit codes of README "token-brokerd".
package enum DaemonExit {
  package static let ok: Int32 = 0
  package static let failure: Int32 = 1
  package static let config: Int32 = 78
}

/// Wires the daemon: config, state, upstream, engines, socket, systemd,
/// signals. Each part is built elsewhere; `run()` only connects them.
///
/// Life cycle, as systemd sees it (`Type=notify`):
/// 1. signals are caught; the socket listens (inherited from systemd, or bound);
///    `STATUS=starting: ...`; the watchdog starts;
/// 2. every provider's first fetch, bounded by `startupTimeout`; then `READY=1` and `STATUS=`
///    kept current;
/// 3. SIGHUP or `POST /v1/reload`: `RELOADING=1`+`MONOTONIC_USEC=`, re-read config and
///    secrets, apply only what changed (or keep the old config and report), `READY=1`;
/// 4. SIGTERM/SIGINT: `STOPPING=1`, stop accepting, finish the requests in flight and the
///    refreshes in flight (which persist rotated refresh tokens) within bounds, exit 0.
package final class Daemon: Sendable {
  package let loader: ConfigLoader?
  let logger: Logger
  let notifier = SystemdNotifier()
  /// Seconds to wait for every provider's first attempt before READY=1.
  let startupTimeout: Double
  /// Follows `log_level` across reloads (nil: the level is fixed).
  let logLevel: LogLevelControl?
  /// Called once the socket listens (dev mode prints what to try).
  let onListening: @Sendable (BrokerConfig) -> Void

  let status: StatusReporter
  private let reloads = SerialGate()
  private let lifecycle = NIOLockedValueBox(Lifecycle())

  struct Lifecycle {
    /// READY=1 was sent: reloads are announced with RELOADING=1 / READY=1 from now on.
    var ready = false
    var stopping = false
    var readyWaiters: [CheckedContinuation<Void, Never>] = []
  }

  package init(
    loader: ConfigLoader?, logger: Logger, startupTimeout: Double = 10, logLevel: LogLevelControl? = nil,
    onListening: @escaping @Sendable (BrokerConfig) -> Void = { _ in }
  ) {
    self.loader = loader
    self.logger = logger
    self.startupTimeout = startupTimeout
    self.logLevel = logLevel
    self.onListening = onListening
    self.status = StatusReporter(notifier: notifier)
  }

  /// Runs until SIGTERM/SIGINT; returns the exit status.
  package func run(_ loaded: LoadedConfig) async -> Int32 {
    // Signals are caught from the first instruction: ServiceGroup installs its own handlers
    // only once it runs, and a SIGTERM before that would kill the process (or, ignored, be
    // lost). Stops go to the group as a graceful shutdown, reloads to the reload service.
    let (reloadRequests, reloadContinuation) = AsyncStream<Void>.makeStream()
    let stopRequests = StopLatch()
    let signals = SignalEvents { event in
      switch event {
      case .stop: stopRequests.request()
      case .reload: reloadContinuation.yield()
      }
    }
    defer { withExtendedLifetime(signals) {} }

    for w in loaded.warnings { logger.warning("\(w)", metadata: ["event": "config_warning"]) }
    // Peer credentials are meaningless when uids are remapped (PrivateUsers=, containers).
    if let map = SystemIO.readText("/proc/self/uid_map"), !UIDMap.isIdentity(map) {
      logger.critical("\(UIDMap.refusal)", metadata: ["event": "start_failed"])
      return DaemonExit.failure
    }
    let stateDir =
      SystemIO.environment()["STATE_DIRECTORY"].flatMap {
        $0.split(separator: ":").first.map(String.init)
      } ?? loaded.config.broker.stateDir
    let store = StateStore(directory: stateDir)
    let stateLock: Int32
    do {
      try store.prepare()
      stateLock = try store.lock()
    } catch {
      logger.critical("\(error.description)", metadata: ["event": "start_failed"])
      return DaemonExit.failure
    }
    defer { close(stateLock) }
    let handover = await takeHandover()
    // One event loop serves every connection and the upstream requests: with two, each cached
    // answer's reference counts and locks on the shared broker state bounced between the two
    // cores' caches, and an answer cost 25 % more CPU (README "Performance").
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let transport = HTTPTokenTransport(eventLoopGroup: group)
    var environment = EngineEnvironment(
      transport: transport, clock: DispatchClock(), store: store, logger: logger)
    let fleet: (store: FleetProcessStore, member: FleetMember)?
    do {
      fleet = try joinFleet(loaded)
    } catch {
      logger.critical("\(error.description)", metadata: ["event": "start_failed"])
      await transport.shutdown()
      try? await group.shutdownGracefully()
      return DaemonExit.config
    }
    environment.fleet = fleet?.member
    let app = BrokerApp.compose(loaded, environment: environment, logger: logger) { [self] broker in
      await self.reload(broker)
    }
    let broker = app.broker
    let server: HTTPServer
    FileLimit.raise(for: ServerLimits(), logger: logger)
    do {
      server = try await HTTPServer.start(
        binding(loaded.config.broker), group: group, handler: app.handler, logger: logger)
    } catch {
      logger.critical("cannot listen: \(error)", metadata: ["event": "start_failed"])
      await transport.shutdown()
      try? await group.shutdownGracefully()
      return DaemonExit.failure
    }
    logger.info(
      "listening on \(describe(server.binding)); \(loaded.config.providers.count) providers",
      metadata: ["event": "started"])
    onListening(loaded.config)
    status.starting(providers: loaded.config.providers.count)

    let requestTimeout = loaded.config.broker.requestTimeout
    // Shut down in reverse order: reloads end, the socket quiesces (STOPPING=1, no new
    // connections, the requests in flight answered), the engines settle (a refresh on the
    // wire persists what it brings back), then systemd's status and watchdog end.
    // The fleet's store goes first, so it shuts down last: the engines' last commits need it.
    let fleetServices: [any Service] =
      fleet.map {
        [FleetService(store: $0.store, member: $0.member, broker: broker, logger: logger)]
      } ?? []
    let services = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: fleetServices + [
          SystemdService(daemon: self, broker: broker),
          EngineService(
            broker: broker, handover: handover, settleTimeout: requestTimeout + 1, logger: logger),
          SocketService(
            server: server, tracker: app.handler, group: group,
            // A request may wait for a refresh already in flight, then make its own.
            drainTimeout: 2 * requestTimeout + 1, logger: logger
          ) { [self] in await self.beginStopping(broker) },
          ReloadService(daemon: self, broker: broker, requests: reloadRequests),
        ],
        logger: logger))
    await stopRequests.onRequest { await services.triggerGracefulShutdown() }
    var exit = DaemonExit.ok
    do {
      try await services.run()
    } catch {
      logger.critical("stopped on an error: \(error)", metadata: ["event": "stopped"])
      exit = DaemonExit.failure
    }
    await keepHandover(broker)
    await transport.shutdown()
    try? await group.shutdownGracefully()
    logger.info("stopped", metadata: ["event": "stopped"])
    return exit
  }

  func becomeReady(_ broker: Broker, allAttempted: Bool) async {
    if !allAttempted {
      let waiting = await broker.statuses().filter { $0.state == .pending || $0.state == .refreshing }
      logger.warning(
        "ready before every provider had its first attempt (start-up timeout \(Int(startupTimeout)) s): still waiting for \(waiting.map(\.name).joined(separator: ", "))",
        metadata: ["event": "startup_timeout"])
    }
    status.setPhase(.running)
    let waiters = lifecycle.withLockedValue { l -> [CheckedContinuation<Void, Never>] in
      l.ready = true
      defer { l.readyWaiters.removeAll() }
      return l.readyWaiters
    }
    notifier.ready()
    await status.publish(broker)
    let line = await status.line(broker)
    logger.info("ready: \(line)", metadata: ["event": "ready"])
    for w in waiters { w.resume() }
    // What start-up allocated and freed (the configuration's parse, every first fetch) goes
    // back to the system instead of staying in malloc's arenas for the daemon's lifetime.
    await BlockingIO.run { SystemIO.returnFreedMemory() }
  }

  /// Returns once READY=1 was sent.
  func awaitReady() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let now = lifecycle.withLockedValue { l -> Bool in
        if l.ready { return true }
        l.readyWaiters.append(c)
        return false
      }
      if now { c.resume() }
    }
  }

  /// The start of a graceful stop: STOPPING=1 and the status line say so.
  func beginStopping(_ broker: Broker) async {
    lifecycle.withLockedValue { $0.stopping = true }
    status.setPhase(.stopping)
    logger.notice("stopping", metadata: ["event": "stopping"])
    notifier.stopping()
    await status.publish(broker)
  }

  func binding(_ settings: BrokerSettings) throws -> HTTPServer.Binding {
    if let fd = try SocketActivation.inheritedListeningSocket() { return .inherited(fd: fd) }
    var gid: UInt32?
    if let name = settings.socketGroup {
      guard let g = AccessResolver.groupID(name) else {
        throw HTTPServer.BindError(description: "broker.socket_group: no group named \(name)")
      }
      gid = g
    }
    return .unix(path: settings.socket, mode: 0o660, group: gid)
  }

  func describe(_ b: HTTPServer.Binding) -> String {
    switch b {
    case .unix(let path, _, _): return path
    case .inherited(let fd): return "inherited socket (fd \(fd))"
    case .tcp(let host, let port): return "\(host):\(port)"
    }
  }

  /// SIGHUP and `POST /v1/reload`, one at a time: nil when the new config is in force, else
  /// its problems (`PATH:LINE: message`) while the old config stays.
  func reload(_ broker: Broker) async -> [String]? {
    await reloads.run { [self] in await reloadNow(broker) }
  }

  private func reloadNow(_ broker: Broker) async -> [String]? {
    guard let loader else { return ["this daemon runs without a configuration file (--dev)"] }
    let (ready, stopping) = lifecycle.withLockedValue { ($0.ready, $0.stopping) }
    if stopping { return ["token-brokerd is stopping"] }
    if ready { notifier.reloading() }
    defer { if ready { notifier.ready() } }
    defer { Task { await BlockingIO.run { SystemIO.returnFreedMemory() } } }
    logger.info("reloading \(loader.path)", metadata: ["event": "reloading"])
    let loaded: LoadedConfig
    do {
      // File and secret reads and NSS lookups block: off the cooperative pool.
      loaded = try await BlockingIO.run { () throws(ConfigError) -> LoadedConfig in try loader.load() }
    } catch {
      for p in error.problems { logger.error("\(p.description)", metadata: ["event": "reload_failed"]) }
      logger.error(
        "configuration refused (\(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")); the old one stays in force",
        metadata: ["event": "reload_failed"])
      let problems = error.problems.map(\.description)
      status.reloadRefused(problems)
      await status.publish(broker)
      return problems
    }
    for w in loaded.warnings { logger.warning("\(w)", metadata: ["event": "config_warning"]) }
    warnAboutRestartOnlySettings(old: broker.config.broker, new: loaded.config.broker)
    let summary = await broker.apply(loaded)
    logLevel?.level = LogSetup.level(loaded.config.broker.logLevel)
    func names(_ list: [String]) -> String { list.isEmpty ? "" : " (\(list.joined(separator: ", ")))" }
    logger.notice(
      "configuration reloaded: \(summary.added.count) added\(names(summary.added)), \(summary.changed.count) changed\(names(summary.changed)), \(summary.removed.count) removed\(names(summary.removed)), \(summary.unchanged.count) unchanged",
      metadata: ["event": "reloaded"])
    status.reloadRefused(nil)
    await status.publish(broker)
    return nil
  }

  /// Settings a reload cannot change in a running daemon.
  private func warnAboutRestartOnlySettings(old: BrokerSettings, new: BrokerSettings) {
    var keys: [String] = []
    if old.socket != new.socket { keys.append("socket") }
    if old.socketGroup != new.socketGroup { keys.append("socket_group") }
    if old.stateDir != new.stateDir { keys.append("state_dir") }
    if old.logTarget != new.logTarget { keys.append("log_target") }
    guard !keys.isEmpty else { return }
    logger.warning(
      "broker.\(keys.joined(separator: ", broker.")) changed: takes effect when token-brokerd restarts",
      metadata: ["event": "config_warning"])
  }
}

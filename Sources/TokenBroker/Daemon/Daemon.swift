import Foundation
import Logging
import NIOCore
import NIOPosix
import TokenBrokerCore
import TokenBrokerServer
import TokenBrokerSystemd
import TokenBrokerUpstream

#if canImport(Glibc)
  import Glibc
#endif

/// Exit codes of INTERFACE.md.
public enum ExitCode {
  public static let ok: Int32 = 0
  public static let failure: Int32 = 1
  public static let config: Int32 = 78
}

/// Wires the daemon: config, state, upstream, engines, socket, systemd,
/// signals. Each part is built elsewhere; `run()` only connects them.
public final class Daemon: Sendable {
  public let loader: ConfigLoader?
  let logger: Logger
  let notifier = SystemdNotifier()
  /// Seconds to wait for every provider's first attempt before READY=1.
  let startupTimeout: Double
  /// Called once the socket listens (dev mode prints what to try).
  let onListening: @Sendable (BrokerConfig) -> Void

  public init(
    loader: ConfigLoader?, logger: Logger, startupTimeout: Double = 10,
    onListening: @escaping @Sendable (BrokerConfig) -> Void = { _ in }
  ) {
    self.loader = loader
    self.logger = logger
    self.startupTimeout = startupTimeout
    self.onListening = onListening
  }

  /// Runs until SIGTERM/SIGINT; returns the exit status.
  public func run(_ loaded: LoadedConfig) async -> Int32 {
    for w in loaded.warnings { logger.warning("\(w)") }
    let stateDir = ProcessInfo.processInfo.environment["STATE_DIRECTORY"].flatMap {
      $0.split(separator: ":").first.map(String.init)
    } ?? loaded.config.broker.stateDir
    let store = StateStore(directory: stateDir)
    do { try store.prepare() } catch {
      logger.critical("\(error.description)")
      return ExitCode.failure
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let transport = HTTPTokenTransport(eventLoopGroup: group)
    let environment = EngineEnvironment(
      transport: transport, clock: DispatchClock(), store: store, logger: logger)
    let broker = Broker(
      config: loaded.config, secrets: loaded.secrets, access: loaded.access, environment: environment)
    let api = SocketAPI(broker: broker, logger: logger) { [self] in await self.reload(broker) }
    let server: HTTPServer
    do {
      server = try await HTTPServer.start(binding(loaded.config.broker), group: group, handler: api, logger: logger)
    } catch {
      logger.critical("cannot listen: \(error)")
      try? await group.shutdownGracefully()
      return ExitCode.failure
    }
    logger.info("listening on \(describe(server.binding))", metadata: ["event": "started"])
    onListening(loaded.config)
    let signals = SignalEvents()
    await broker.start()
    let allAttempted = await broker.awaitFirstAttempts(timeout: startupTimeout)
    if !allAttempted { logger.warning("not every provider answered within \(Int(startupTimeout)) s; ready anyway") }
    _ = notifier.ready()
    await publishStatus(broker)
    let watchdog = startWatchdog(broker)

    for await event in signals.events {
      switch event {
      case .reload: _ = await reload(broker)
      case .stop: break
      }
      if case .stop = event { break }
    }

    logger.info("stopping", metadata: ["event": "stopping"])
    _ = notifier.stopping()
    watchdog?.cancel()
    await server.close()
    await broker.stop()
    await transport.shutdown()
    try? await group.shutdownGracefully()
    return ExitCode.ok
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

  /// SIGHUP and `POST /v1/reload`: the old config stays when the new one is refused.
  func reload(_ broker: Broker) async -> [String]? {
    guard let loader else { return ["this daemon runs without a configuration file (--dev)"] }
    _ = notifier.reloading()
    defer { _ = notifier.ready() }
    do {
      let loaded = try loader.load()
      for w in loaded.warnings { logger.warning("\(w)") }
      let summary = await broker.apply(loaded)
      logger.notice(
        "configuration reloaded: \(summary.added.count) added, \(summary.changed.count) changed, \(summary.removed.count) removed, \(summary.unchanged.count) unchanged",
        metadata: ["event": "reloaded"])
      await publishStatus(broker)
      return nil
    } catch {
      for p in error.problems { logger.error("\(p.description)", metadata: ["event": "reload_failed"]) }
      _ = notifier.status("reload refused: \(error.problems.first?.description ?? "invalid configuration")")
      return error.problems.map(\.description)
    }
  }

  func publishStatus(_ broker: Broker) async {
    guard notifier.isEnabled else { return }
    _ = notifier.status(StatusLine.summary(await broker.statuses(), now: broker.environment.clock.now()))
  }

  /// WATCHDOG=1 at half of WATCHDOG_USEC, sent only after every engine answered.
  func startWatchdog(_ broker: Broker) -> Task<Void, Never>? {
    guard let interval = notifier.watchdogInterval() else { return nil }
    let half = interval / 2
    return Task { [notifier] in
      while !Task.isCancelled {
        _ = await broker.statuses()
        _ = notifier.watchdog()
        _ = notifier.status(StatusLine.summary(await broker.statuses(), now: broker.environment.clock.now()))
        try? await Task.sleep(for: half)
      }
    }
  }
}

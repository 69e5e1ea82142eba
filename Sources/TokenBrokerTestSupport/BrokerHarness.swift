import Foundation
import Logging
import NIOPosix
import TokenBrokerAPI
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerUpstream

/// A whole broker in the test process: the real engines, the real upstream
/// client and socket server, a manual clock, captured logs, a fresh state dir.
package final class BrokerHarness: Sendable {
  package let clock: ManualClock
  package let logs: LogCapture
  package let stateDir: String
  package let socketPath: String
  package let broker: Broker
  package let server: HTTPServer
  package let transport: HTTPTokenTransport
  package let config: BrokerConfig
  let secretValues: [String]
  /// The fleet poll of a harness with a fleet, cancelled at shutdown.
  let poller: Task<Void, Never>?

  /// - Parameters:
  ///   - random: jitter source; 0.5 means "exactly refresh_at".
  ///   - wrapTransport: what the engines talk to, around the real upstream client.
  package static func start(
    providers: [ProviderConfig], secrets: [String: ResolvedSecrets], settings: BrokerSettings = .testDefaults,
    clock: ManualClock = ManualClock(), stateDir: String? = nil, random: Double = 0.5,
    limits: ServerLimits = ServerLimits(), fleet: FleetMember? = nil,
    wrapTransport: (HTTPTokenTransport) -> any TokenTransport = { $0 }
  ) async throws -> BrokerHarness {
    let dir = try stateDir ?? TempDirectory.make("tb-state")
    let socketDir = try TempDirectory.make("tb-sock")
    // Reachable by every uid: access is decided by peer credentials, not file modes.
    chmod(socketDir, 0o755)
    let logs = LogCapture()
    let logger = logs.logger()
    var settings = settings
    settings.stateDir = dir
    settings.socket = socketDir + "/broker.sock"
    let config = BrokerConfig(broker: settings, providers: providers)
    let transport = HTTPTokenTransport(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    let env = EngineEnvironment(
      transport: wrapTransport(transport), clock: clock, store: StateStore(directory: dir), logger: logger,
      random: { random }, fleet: fleet)
    let (access, _) = AccessResolver.resolve(config)
    let app = BrokerApp.compose(
      LoadedConfig(config: config, secrets: secrets, access: access, warnings: []), environment: env,
      logger: logger)
    let broker = app.broker
    let api = app.handler
    var poller: Task<Void, Never>?
    if let fleet {
      let followLogger = logger
      Task { await fleet.follow(broker, logger: followLogger) }
      poller = Task { await fleet.poll(broker, clock: clock) }
    }
    let server = try await HTTPServer.start(
      .unix(path: settings.socket, mode: 0o666), group: MultiThreadedEventLoopGroup.singleton, handler: api,
      limits: limits, logger: logger)
    await broker.start()
    return BrokerHarness(
      clock: clock, logs: logs, stateDir: dir, socketPath: settings.socket, broker: broker, server: server,
      transport: transport, config: config, secretValues: secrets.values.flatMap(\.values), poller: poller)
  }

  init(
    clock: ManualClock, logs: LogCapture, stateDir: String, socketPath: String, broker: Broker,
    server: HTTPServer,
    transport: HTTPTokenTransport, config: BrokerConfig, secretValues: [String],
    poller: Task<Void, Never>? = nil
  ) {
    self.poller = poller
    self.clock = clock
    self.logs = logs
    self.stateDir = stateDir
    self.socketPath = socketPath
    self.broker = broker
    self.server = server
    self.transport = transport
    self.config = config
    self.secretValues = secretValues
  }

  /// Waits for every provider's first fetch.
  package func firstAttempts() async {
    for name in broker.providerNames { await broker.engine(named: name)?.awaitFirstAttempt() }
    await broker.settle()
  }

  /// A request over the real socket, as a client process would make it. The
  /// blocking client runs on a thread of its own: on Linux the cooperative pool
  /// and `DispatchQueue.global()` share ncpu threads, so blocking either would
  /// starve the broker under test.
  package func request(
    _ method: String, _ path: String, accept: String = "application/json", body: [UInt8]? = nil
  ) async throws -> UnixHTTPClient.Response {
    let socket = socketPath
    return try await withCheckedThrowingContinuation { c in
      Thread {
        var client = UnixHTTPClient(socketPath: socket)
        client.timeout = 20
        c.resume(with: Result { try client.request(method, path, accept: accept, body: body) })
      }.start()
    }
  }

  /// A POST with a JSON body (`json` is sent as it is).
  package func post(_ path: String, json: String) async throws -> UnixHTTPClient.Response {
    try await request("POST", path, body: Array(json.utf8))
  }

  package func get(_ path: String, accept: String = "application/json") async throws
    -> UnixHTTPClient.Response
  {
    try await request("GET", path, accept: accept)
  }

  package func post(_ path: String) async throws -> UnixHTTPClient.Response {
    try await request("POST", path)
  }

  package func status(_ name: String) async -> ProviderStatus? {
    await broker.engine(named: name)?.status()
  }

  /// Every secret value and every token the upstream issued that shows up in a log line.
  package func leakedSecrets(upstreams: [FakeUpstream]) -> [String] {
    let needles =
      secretValues
      + upstreams.flatMap {
        $0.issuedAccessTokens + $0.issuedRefreshTokens + $0.issuedAuthorizationCodes
          + $0.deviceAuthorizationRequests.map(\.deviceCode)
      }
    return logs.leaks(of: needles)
  }

  package func shutdown() async {
    poller?.cancel()
    await server.close()
    await broker.stop()
    await transport.shutdown()
  }
}

extension BrokerSettings {
  /// Test defaults: no jitter, 30 s min_valid, 5 s upstream deadline.
  package static var testDefaults: BrokerSettings {
    var s = BrokerSettings()
    s.refreshJitter = 0
    s.requestTimeout = 5
    s.minValid = 30
    return s
  }
}

extension UnixHTTPClient.Response {
  package var json: [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
  }
}

import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import TokenBroker
import TokenBrokerCore
import TokenBrokerServer
import TokenBrokerUpstream

/// Wraps the real upstream client. While diverted, every token request goes to
/// another URL instead (a closed port, a name that does not resolve, a TLS
/// endpoint whose certificate is not trusted), so transport-level faults can be
/// switched on and healed mid-test. Records when (by `now`) each request left.
public final class SwitchableTransport: TokenTransport {
  /// One request as sent: manual-clock time and whether it was diverted.
  public struct Attempt: Sendable, Equatable {
    public var at: Double
    public var url: String
    public var diverted: Bool
  }

  struct State {
    var divert: String?
    var attempts: [Attempt] = []
  }

  let inner: any TokenTransport
  let now: @Sendable () -> Double
  private let state = NIOLockedValueBox(State())

  public init(_ inner: any TokenTransport, now: @escaping @Sendable () -> Double) {
    self.inner = inner
    self.now = now
  }

  /// Sends every following request to `url`; nil heals (requests go where they were meant to).
  public func divert(to url: String?) {
    state.withLockedValue { $0.divert = url }
  }

  /// Every request sent so far, in order.
  public var attempts: [Attempt] { state.withLockedValue { $0.attempts } }

  public func send(_ request: TokenRequest, caFile: String?, timeout: Double) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    let at = now()
    var request = request
    let target = state.withLockedValue { s -> String? in
      s.attempts.append(Attempt(at: at, url: s.divert ?? request.url, diverted: s.divert != nil))
      return s.divert
    }
    if let target { request.url = target }
    return try await inner.send(request, caFile: caFile, timeout: timeout)
  }
}

extension BrokerHarness {
  /// `start`, with the real upstream client wrapped in a `SwitchableTransport`.
  public static func startSwitchable(
    providers: [ProviderConfig], secrets: [String: ResolvedSecrets], settings: BrokerSettings = .testDefaults,
    clock: ManualClock = ManualClock(), random: Double = 0.5
  ) async throws -> (BrokerHarness, SwitchableTransport) {
    let dir = try makeTempDir("tb-state")
    let socketDir = try makeTempDir("tb-sock")
    chmod(socketDir, 0o755)
    let logs = LogCapture()
    let logger = logs.logger()
    var settings = settings
    settings.stateDir = dir
    settings.socket = socketDir + "/broker.sock"
    let config = BrokerConfig(broker: settings, providers: providers)
    let transport = HTTPTokenTransport(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    let switchable = SwitchableTransport(transport, now: { clock.now() })
    let env = EngineEnvironment(
      transport: switchable, clock: clock, store: StateStore(directory: dir), logger: logger,
      random: { random })
    let (access, _) = AccessResolver.resolve(config)
    let broker = Broker(config: config, secrets: secrets, access: access, environment: env)
    let api = SocketAPI(broker: broker, logger: logger)
    let server = try await HTTPServer.start(
      .unix(path: settings.socket, mode: 0o666), group: MultiThreadedEventLoopGroup.singleton, handler: api,
      limits: ServerLimits(), logger: logger)
    await broker.start()
    let harness = BrokerHarness(
      clock: clock, logs: logs, stateDir: dir, socketPath: settings.socket, broker: broker, server: server,
      transport: transport, config: config, secretValues: secrets.values.flatMap(\.values))
    return (harness, switchable)
  }
}

import Logging
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer

/// The broker as one piece: the engines for a loaded configuration and the socket API in
/// front of them. The daemon, the in-process test harness and the fuzz harness all build it
/// here, so each runs the same wiring; what differs is only the environment they pass in
/// (clock, transport, state store, logger) and how they serve `handler`.
package struct BrokerApp: Sendable {
  package let broker: Broker
  package let api: SocketAPI
  /// What a server runs: the API behind request tracking (in-flight count, one log line per answer).
  package let handler: RequestTracker

  /// - Parameter reload: `POST /v1/reload`; nil when the new configuration is in force,
  ///   else its problems (`PATH:LINE: message`).
  package static func compose(
    _ loaded: LoadedConfig, environment: EngineEnvironment, logger: Logger,
    reload: @escaping @Sendable (Broker) async -> [String]? = { _ in
      ["this daemon runs without a configuration file"]
    }
  ) -> BrokerApp {
    let broker = Broker(
      config: loaded.config, secrets: loaded.secrets, access: loaded.access, environment: environment)
    let api = SocketAPI(broker: broker, logger: logger) { [broker] in await reload(broker) }
    return BrokerApp(broker: broker, api: api, handler: RequestTracker(inner: api, logger: logger))
  }
}

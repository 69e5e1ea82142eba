import Logging
import ServiceLifecycle
import TokenBrokerCore
import TokenBrokerEngine

/// The provider engines: started first thing; on graceful shutdown they send nothing more,
/// and the requests still on the wire finish (and persist what they bring back: a rotated
/// refresh token) within `settleTimeout` seconds. Providers start from the tokens the
/// previous run handed over, where their credential is unchanged.
struct EngineService: Service {
  let broker: Broker
  /// The tokens the previous run kept (README "Restarts and upgrades").
  var handover: TokenHandover? = nil
  let settleTimeout: Double
  let logger: Logger

  func run() async throws {
    await broker.start(handover: handover)
    try? await gracefulShutdown()
    await broker.stop()
    if await withDeadline(seconds: settleTimeout, { await broker.settle() }) == nil {
      logger.warning(
        "token requests still in flight after \(Int(settleTimeout)) s; abandoned",
        metadata: ["event": "stop_timeout"])
    }
  }
}

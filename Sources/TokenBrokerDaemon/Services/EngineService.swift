import Logging
import ServiceLifecycle
import TokenBrokerEngine

/// The provider engines: started first thing; on graceful shutdown they send nothing more,
/// and the requests still on the wire finish (and persist what they bring back: a rotated
/// refresh token) within `settleTimeout` seconds.
struct EngineService: Service {
  let broker: Broker
  let settleTimeout: Double
  let logger: Logger

  func run() async throws {
    await broker.start()
    try? await gracefulShutdown()
    await broker.stop()
    if await withDeadline(seconds: settleTimeout, { await broker.settle() }) == nil {
      logger.warning(
        "token requests still in flight after \(Int(settleTimeout)) s; abandoned",
        metadata: ["event": "stop_timeout"])
    }
  }
}

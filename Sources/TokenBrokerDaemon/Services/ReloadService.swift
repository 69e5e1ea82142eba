import ServiceLifecycle
import TokenBrokerEngine

/// SIGHUP: re-read the configuration, one reload at a time. A SIGHUP that arrives before
/// READY=1 is applied right after it (never lost, never racing the start).
struct ReloadService: Service {
  let daemon: Daemon
  let broker: Broker
  let requests: AsyncStream<Void>

  func run() async throws {
    for await _ in requests.cancelOnGracefulShutdown() {
      await daemon.awaitReady()
      _ = await daemon.reload(broker)
    }
  }
}

import Logging
import ServiceLifecycle
import TokenBrokerEngine
import TokenBrokerSystemd

/// systemd's view of the daemon: `READY=1` once every provider had its first attempt (or
/// the start-up timeout passed), then `STATUS=` kept current on every change and
/// `WATCHDOG=1` while the refresh machinery answers, until the group is shut down.
struct SystemdService: Service {
  let daemon: Daemon
  let broker: Broker

  func run() async throws {
    let watchdog = Watchdog(notifier: daemon.notifier, logger: daemon.logger).start(broker)
    defer { watchdog?.cancel() }
    let broker = self.broker
    let all = await withDeadline(seconds: daemon.startupTimeout) {
      for e in broker.engines { await e.awaitFirstAttempt() }
      return true
    }
    await daemon.becomeReady(broker, allAttempted: all ?? false)
    let keepCurrent = daemon.status.keepCurrent(broker)
    defer { keepCurrent?.cancel() }
    try? await gracefulShutdown()
  }
}

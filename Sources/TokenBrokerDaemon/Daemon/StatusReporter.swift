import Logging
import NIOConcurrencyHelpers
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerSystemd

/// Keeps systemd's `STATUS=` current: sent at start, READY, reload and stop, and after
/// every refresh outcome in between (sent only when the line changed). Silent without
/// `$NOTIFY_SOCKET`.
final class StatusReporter: Sendable {
  enum Phase: Sendable { case starting, running, stopping }

  private struct State {
    var phase: Phase = .starting
    var lastSent: String?
    /// The problems of the last refused reload, until a reload succeeds.
    var refusedReload: String?
  }

  let notifier: SystemdNotifier
  private let state = NIOLockedValueBox(State())

  init(notifier: SystemdNotifier) {
    self.notifier = notifier
  }

  var phase: Phase { state.withLockedValue { $0.phase } }

  func starting(providers: Int) {
    send(StatusLine.starting(providers: providers))
  }

  func setPhase(_ phase: Phase) {
    state.withLockedValue { $0.phase = phase }
  }

  func reloadRefused(_ problems: [String]?) {
    state.withLockedValue { $0.refusedReload = problems.map(StatusLine.problems) }
  }

  /// The line for the current state of `broker`.
  func line(_ broker: Broker) async -> String {
    let summary = StatusLine.summary(await broker.statuses(), now: broker.environment.clock.now())
    let (phase, refused) = state.withLockedValue { ($0.phase, $0.refusedReload) }
    switch phase {
    case .starting, .running: return StatusLine.running(summary, refusedReload: refused)
    case .stopping: return "stopping: " + summary
    }
  }

  func publish(_ broker: Broker) async {
    guard notifier.isEnabled else { return }
    send(await line(broker))
  }

  /// Re-publishes whenever an engine's state changed (no polling), until cancelled.
  func keepCurrent(_ broker: Broker) -> Task<Void, Never>? {
    guard notifier.isEnabled else { return nil }
    let changes = broker.environment.changes.changes
    return Task {
      for await _ in changes {
        if Task.isCancelled { return }
        if phase == .running { await publish(broker) }
      }
    }
  }

  private func send(_ line: String) {
    guard notifier.isEnabled else { return }
    let changed = state.withLockedValue { s -> Bool in
      guard s.lastSent != line else { return false }
      s.lastSent = line
      return true
    }
    if changed { notifier.status(line) }
  }
}

/// `WATCHDOG=1` at half of `$WATCHDOG_USEC`, sent only while the refresh machinery answers:
/// every provider engine answers a status query and a timer of the broker's clock fires, both
/// within that half interval. When they do not, the pings stop and systemd restarts us.
struct Watchdog: Sendable {
  let notifier: SystemdNotifier
  let logger: Logger

  func start(_ broker: Broker) -> Task<Void, Never>? {
    guard let interval = notifier.watchdogInterval() else { return nil }
    let half = interval / 2
    let (seconds, attoseconds) = half.components
    let halfSeconds = Double(seconds) + Double(attoseconds) / 1e18
    logger.debug("watchdog: pinging every \(halfSeconds) s", metadata: ["event": "watchdog"])
    return Task { [notifier, logger] in
      var healthy = true
      while !Task.isCancelled {
        let alive = await withDeadline(seconds: halfSeconds) { await Self.probe(broker) } ?? false
        if alive {
          notifier.watchdog()
          if !healthy { logger.notice("refresh machinery answers again", metadata: ["event": "watchdog"]) }
        } else if healthy {
          logger.error(
            "refresh machinery did not answer within \(halfSeconds) s; watchdog pings withheld",
            metadata: ["event": "watchdog_missed"])
        }
        healthy = alive
        do { try await Task.sleep(for: half) } catch { return }
      }
    }
  }

  /// True once every engine answered and a timer due now fired.
  static func probe(_ broker: Broker) async -> Bool {
    _ = await broker.statuses()
    let clock = broker.environment.clock
    let handle = NIOLockedValueBox<(any TimerHandle)?>(nil)
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let h = clock.schedule(at: clock.now()) { c.resume() }
      handle.withLockedValue { $0 = h }
    }
    handle.withLockedValue { $0 = nil }
    return true
  }
}

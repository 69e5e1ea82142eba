import Logging
import NIOConcurrencyHelpers
import TokenBrokerCore

/// This broker as a member of a fleet (README "Fleet"): the shared store, its name in the
/// fleet, the lease of its claims, the store's health as last seen, and the announcements of
/// other brokers' commits, routed to the engines they concern.
package final class FleetMember: Sendable {
  package let store: any FleetStore
  package let node: String
  package let lease: Double
  /// Seconds between two readings of every row this broker serves: the fallback for an
  /// announcement that never arrived (README "Fleet").
  package let pollInterval: Double

  package enum Health: String, Sendable { case ok, unreachable }

  struct State {
    var health: Health = .ok
    var lastError: String?
    var waiters: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
    var nextWaiter = 0
    var fenced = 0
    var claimsWon = 0
    var claimsLost = 0
    var notifications = 0
    var polls = 0
  }
  private let state = NIOLockedValueBox(State())

  package init(store: any FleetStore, node: String, lease: Double, pollInterval: Double = 10) {
    self.store = store
    self.node = node
    self.lease = lease
    self.pollInterval = pollInterval
  }

  package var health: Health { state.withLockedValue { $0.health } }

  /// Counters for status and metrics.
  package struct Counters: Sendable, Equatable {
    package var claimsWon: Int
    package var claimsLost: Int
    package var fenced: Int
    package var notifications: Int
    package var polls: Int
  }

  package var counters: Counters {
    state.withLockedValue {
      Counters(
        claimsWon: $0.claimsWon, claimsLost: $0.claimsLost, fenced: $0.fenced,
        notifications: $0.notifications,
        polls: $0.polls)
    }
  }

  /// Records whether the last call to the store went through; true when that changed.
  @discardableResult
  func reached(_ ok: Bool, error: String? = nil) -> Bool {
    state.withLockedValue { s in
      let health: Health = ok ? .ok : .unreachable
      defer {
        s.health = health
        if !ok { s.lastError = error }
      }
      return s.health != health
    }
  }

  func count(_ what: WritableKeyPath<State, Int>) {
    state.withLockedValue { $0[keyPath: what] += 1 }
  }

  /// Returns when a change of row `id` is announced, or after `seconds` on `clock`.
  func awaitChange(_ id: String, seconds: Double, clock: any BrokerClock) async {
    let ticket = state.withLockedValue { s -> Int in
      s.nextWaiter += 1
      return s.nextWaiter
    }
    let timer = NIOLockedValueBox<(any TimerHandle)?>(nil)
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      state.withLockedValue { $0.waiters[id, default: [:]][ticket] = c }
      let handle = clock.schedule(at: clock.now() + seconds) { [self] in self.wake(id, ticket: ticket) }
      timer.withLockedValue { $0 = handle }
    }
    timer.withLockedValue { $0?.cancel() }
  }

  private func wake(_ id: String, ticket: Int? = nil) {
    let woken = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
      if let ticket {
        return s.waiters[id]?.removeValue(forKey: ticket).map { [$0] } ?? []
      }
      return s.waiters.removeValue(forKey: id).map { Array($0.values) } ?? []
    }
    for c in woken { c.resume() }
  }

  /// Follows the store's announcements until it ends: every commit wakes the brokers waiting
  /// for that row and lets the engine of its provider take the new token over; a
  /// (re)connection makes every engine read its rows again (what was missed meanwhile).
  package func follow(_ broker: Broker, logger: Logger) async {
    for await change in store.changes {
      switch change {
      case .row(let id, _):
        count(\.notifications)
        wake(id)
        let provider = id.split(separator: "|", maxSplits: 1).first.map(String.init) ?? ""
        if let engine = broker.engine(named: provider) { await engine.fleetChanged(id: id) }
      case .resubscribed:
        if reached(true) {
          logger.notice("the fleet's store is reachable again", metadata: ["event": "fleet_store_ok"])
        }
        for engine in broker.engines { await engine.fleetResubscribed() }
      }
    }
  }

  /// The fallback for a lost announcement: every ``pollInterval`` seconds on `clock`, each
  /// engine reads the rows it serves and takes a newer token than its own (a row that did not
  /// change costs one read). Runs until its task is cancelled.
  package func poll(_ broker: Broker, clock: any BrokerClock) async {
    while !Task.isCancelled {
      await pause(pollInterval, clock: clock)
      guard !Task.isCancelled else { return }
      count(\.polls)
      for engine in broker.engines { await engine.fleetPoll() }
    }
  }

  /// `seconds` on `clock`, or until the task is cancelled.
  private func pause(_ seconds: Double, clock: any BrokerClock) async {
    let resumed = NIOLockedValueBox<(CheckedContinuation<Void, Never>?, Bool)>((nil, false))
    let timer = NIOLockedValueBox<(any TimerHandle)?>(nil)
    await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let cancelled = resumed.withLockedValue { r -> Bool in
          r.0 = c
          return r.1
        }
        if cancelled { Self.resume(resumed) }
        let handle = clock.schedule(at: clock.now() + seconds) { Self.resume(resumed) }
        timer.withLockedValue { $0 = handle }
      }
    } onCancel: {
      resumed.withLockedValue { $0.1 = true }
      Self.resume(resumed)
    }
    timer.withLockedValue { $0?.cancel() }
  }

  private static func resume(_ box: NIOLockedValueBox<(CheckedContinuation<Void, Never>?, Bool)>) {
    let c = box.withLockedValue { r -> CheckedContinuation<Void, Never>? in
      defer { r.0 = nil }
      return r.0
    }
    c?.resume()
  }
}

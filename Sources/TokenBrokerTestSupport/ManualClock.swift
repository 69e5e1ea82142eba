import NIOConcurrencyHelpers
import TokenBrokerCore

/// A clock that moves only when a test says so. `advance(by:)` runs every
/// timer that falls due, in deadline order, and awaits what each one started.
package final class ManualClock: BrokerClock, Sendable {
  struct Timer {
    var id: Int
    var deadline: Double
    var action: @Sendable () async -> Void
  }

  struct State {
    var now: Double
    var nextID = 0
    var timers: [Timer] = []
  }

  private let state: NIOLockedValueBox<State>

  package init(now: Double = 1_800_000_000) {
    state = NIOLockedValueBox(State(now: now))
  }

  package func now() -> Double { state.withLockedValue { $0.now } }

  package func schedule(at deadline: Double, _ action: @escaping @Sendable () async -> Void)
    -> any TimerHandle
  {
    let id = state.withLockedValue { s -> Int in
      s.nextID += 1
      s.timers.append(Timer(id: s.nextID, deadline: deadline, action: action))
      return s.nextID
    }
    return Handle(clock: self, id: id)
  }

  /// Deadlines of the armed timers, soonest first.
  package var pendingDeadlines: [Double] {
    state.withLockedValue { $0.timers.map(\.deadline).sorted() }
  }

  /// Moves time forward by `seconds`, firing due timers one by one at their own deadlines.
  package func advance(by seconds: Double) async {
    let target = now() + seconds
    while let timer = popDue(until: target) {
      await timer.action()
    }
    state.withLockedValue { $0.now = max($0.now, target) }
  }

  /// Moves to just past the next armed timer, firing it; false when none is armed.
  @discardableResult
  package func advanceToNextTimer() async -> Bool {
    guard let next = pendingDeadlines.first else { return false }
    await advance(by: max(0, next - now()))
    return true
  }

  private func popDue(until target: Double) -> Timer? {
    state.withLockedValue { s -> Timer? in
      guard let i = s.timers.indices.min(by: { s.timers[$0].deadline < s.timers[$1].deadline }),
        s.timers[i].deadline <= target
      else { return nil }
      let t = s.timers.remove(at: i)
      s.now = max(s.now, t.deadline)
      return t
    }
  }

  fileprivate func cancel(_ id: Int) {
    state.withLockedValue { s in s.timers.removeAll { $0.id == id } }
  }

  final class Handle: TimerHandle {
    let clock: ManualClock
    let id: Int
    init(clock: ManualClock, id: Int) {
      self.clock = clock
      self.id = id
    }
    func cancel() { clock.cancel(id) }
  }
}

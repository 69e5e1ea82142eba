import Dispatch
import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// The production clock: Dispatch timers for the schedule (an idle broker has one armed
/// timer per token and no polling), and a `now()` that a step of the system clock cannot
/// move. It is the wall time read once at start plus the time elapsed since on
/// CLOCK_BOOTTIME (which counts suspend and ignores NTP steps): a backward step of the
/// wall clock never makes a token look younger than it is, so none is served past its
/// expiry (README "Refresh").
package struct DispatchClock: BrokerClock {
  private let queue: DispatchQueue
  private let wallAtStart: Double
  private let bootAtStart: Double

  package init(queue: DispatchQueue = DispatchQueue(label: "token-broker.timers")) {
    self.queue = queue
    self.bootAtStart = Self.bootTime()
    self.wallAtStart = SystemIO.wallClockSeconds()
  }

  package func now() -> Double { wallAtStart + (Self.bootTime() - bootAtStart) }

  static func bootTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_BOOTTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  package func schedule(at deadline: Double, _ action: @escaping @Sendable () async -> Void)
    -> any TimerHandle
  {
    let source = DispatchSource.makeTimerSource(queue: queue)
    let delay = max(0, deadline - now())
    // Wall-clock deadline: a suspended machine wakes up and refreshes at once.
    source.schedule(wallDeadline: .now() + delay, leeway: .milliseconds(Int(min(1000, max(1, delay * 10)))))
    source.setEventHandler {
      source.cancel()
      Task { await action() }
    }
    source.resume()
    return DispatchTimerHandle(source: source)
  }
}

final class DispatchTimerHandle: TimerHandle, @unchecked Sendable {
  private let source: any DispatchSourceTimer
  init(source: any DispatchSourceTimer) { self.source = source }
  func cancel() { source.cancel() }
}

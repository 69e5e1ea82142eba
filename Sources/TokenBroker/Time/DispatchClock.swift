import Dispatch
import Foundation
import TokenBrokerCore

/// The production clock: wall time for token lifetimes, Dispatch timers for
/// the schedule. An idle broker has one armed timer per token and no polling.
public struct DispatchClock: BrokerClock {
  private let queue: DispatchQueue

  public init(queue: DispatchQueue = DispatchQueue(label: "token-broker.timers")) {
    self.queue = queue
  }

  public func now() -> Double { Date().timeIntervalSince1970 }

  public func schedule(at deadline: Double, _ action: @escaping @Sendable () async -> Void) -> any TimerHandle
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

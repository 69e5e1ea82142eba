import NIOConcurrencyHelpers

/// At most `limit` connections at once to one endpoint (`host|port`): many providers on one
/// identity provider refresh together after a start, and the rest wait their turn (within
/// their own deadline) instead of opening hundreds of connections at once. Callbacks, not
/// `async`: a request's fate is decided on its event loop, whatever the cooperative pool does.
final class ConnectionLimiter: Sendable {
  private struct Waiter {
    var ticket: Int
    var granted: @Sendable () -> Void
  }

  private struct State {
    var open: [String: Int] = [:]
    var waiting: [String: [Waiter]] = [:]
    var nextTicket = 0
  }

  private let limit: Int
  private let state = NIOLockedValueBox(State())

  init(limit: Int) {
    self.limit = limit
  }

  /// Calls `granted` (at once, or when a slot frees) with a slot that `release` gives back.
  /// Returns the ticket that `withdraw` takes out of the queue.
  @discardableResult
  func acquire(_ endpoint: String, _ granted: @escaping @Sendable () -> Void) -> Int {
    let (ticket, now) = state.withLockedValue { s -> (Int, Bool) in
      s.nextTicket += 1
      if s.open[endpoint, default: 0] < limit {
        s.open[endpoint, default: 0] += 1
        return (s.nextTicket, true)
      }
      s.waiting[endpoint, default: []].append(Waiter(ticket: s.nextTicket, granted: granted))
      return (s.nextTicket, false)
    }
    if now { granted() }
    return ticket
  }

  /// Takes a waiting request out of the queue: true when it was still waiting, false when it
  /// has its slot already (its `granted` runs or ran, and the slot must be released).
  func withdraw(_ endpoint: String, ticket: Int) -> Bool {
    state.withLockedValue { s in
      guard let index = s.waiting[endpoint]?.firstIndex(where: { $0.ticket == ticket }) else { return false }
      s.waiting[endpoint]!.remove(at: index)
      if s.waiting[endpoint]!.isEmpty { s.waiting[endpoint] = nil }
      return true
    }
  }

  /// Gives a slot back: to the longest waiter, or to the pool.
  func release(_ endpoint: String) {
    let next = state.withLockedValue { s -> Waiter? in
      if var queue = s.waiting[endpoint], !queue.isEmpty {
        let first = queue.removeFirst()
        s.waiting[endpoint] = queue.isEmpty ? nil : queue
        return first
      }
      let open = s.open[endpoint, default: 1] - 1
      s.open[endpoint] = open > 0 ? open : nil
      return nil
    }
    next?.granted()
  }

  /// Slots held for `endpoint` (for tests).
  func open(_ endpoint: String) -> Int { state.withLockedValue { $0.open[endpoint, default: 0] } }

  /// Requests waiting for a slot to `endpoint`.
  func waiting(_ endpoint: String) -> Int { state.withLockedValue { $0.waiting[endpoint]?.count ?? 0 } }
}

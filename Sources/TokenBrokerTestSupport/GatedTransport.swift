import NIOConcurrencyHelpers
import TokenBrokerCore

/// Wraps a transport so a test holds requests on the wire for as long as it likes
/// (`close`, then `open`) and can rewrite answers on their way back: a refresh "in
/// flight" during a reload or a stop, or a 200 the broker must refuse, without sleeps.
package final class GatedTransport: TokenTransport {
  struct State {
    var closed = false
    var held: [CheckedContinuation<Void, Never>] = []
    var arrivals = 0
    var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    var rewrites: [@Sendable (UpstreamResponse) -> UpstreamResponse] = []
  }

  let inner: any TokenTransport
  private let state = NIOLockedValueBox(State())

  package init(_ inner: any TokenTransport) { self.inner = inner }

  /// Requests sent from now on wait until `open()`.
  package func close() { state.withLockedValue { $0.closed = true } }

  /// Lets every held request (and every later one) through.
  package func open() {
    let held = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
      s.closed = false
      defer { s.held.removeAll() }
      return s.held
    }
    for c in held { c.resume() }
  }

  /// Requests that reached this transport so far.
  package var arrivals: Int { state.withLockedValue { $0.arrivals } }

  /// Returns once `count` requests have reached this transport.
  package func awaitArrivals(_ count: Int) async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let now = state.withLockedValue { s -> Bool in
        if s.arrivals >= count { return true }
        s.arrivalWaiters.append((count, c))
        return false
      }
      if now { c.resume() }
    }
  }

  /// The next answer that comes back is passed through `change` first.
  package func rewriteNext(_ change: @escaping @Sendable (UpstreamResponse) -> UpstreamResponse) {
    state.withLockedValue { $0.rewrites.append(change) }
  }

  package func send(
    _ request: TokenRequest, caFile: String?, proxy: UpstreamProxy?, timeout: Double
  ) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let (pass, ready) = state.withLockedValue { s -> (Bool, [CheckedContinuation<Void, Never>]) in
        s.arrivals += 1
        let n = s.arrivals
        let ready = s.arrivalWaiters.filter { $0.count <= n }.map(\.continuation)
        s.arrivalWaiters.removeAll { $0.count <= n }
        if s.closed {
          s.held.append(c)
          return (false, ready)
        }
        return (true, ready)
      }
      for r in ready { r.resume() }
      if pass { c.resume() }
    }
    let response = try await inner.send(request, caFile: caFile, proxy: proxy, timeout: timeout)
    let change = state.withLockedValue { s in s.rewrites.isEmpty ? nil : s.rewrites.removeFirst() }
    return change.map { $0(response) } ?? response
  }
}

extension BrokerHarness {
  /// `start`, with the real upstream client wrapped in a `GatedTransport`.
  package static func startGated(
    providers: [ProviderConfig], secrets: [String: ResolvedSecrets], clock: ManualClock = ManualClock(),
    stateDir: String? = nil
  ) async throws -> (BrokerHarness, GatedTransport) {
    var gated: GatedTransport?
    let harness = try await start(providers: providers, secrets: secrets, clock: clock, stateDir: stateDir) {
      let g = GatedTransport($0)
      gated = g
      return g
    }
    return (harness, gated!)
  }
}

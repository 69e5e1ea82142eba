import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerUpstream

/// Wraps the real upstream client. While diverted, every token request goes to
/// another URL instead (a closed port, a name that does not resolve, a TLS
/// endpoint whose certificate is not trusted), so transport-level faults can be
/// switched on and healed mid-test. Records when (by `now`) each request left.
package final class SwitchableTransport: TokenTransport {
  /// One request as sent: manual-clock time and whether it was diverted.
  package struct Attempt: Sendable, Equatable {
    package var at: Double
    package var url: String
    package var diverted: Bool
  }

  struct State {
    var divert: String?
    var attempts: [Attempt] = []
  }

  let inner: any TokenTransport
  let now: @Sendable () -> Double
  private let state = NIOLockedValueBox(State())

  package init(_ inner: any TokenTransport, now: @escaping @Sendable () -> Double) {
    self.inner = inner
    self.now = now
  }

  /// Sends every following request to `url`; nil heals (requests go where they were meant to).
  package func divert(to url: String?) {
    state.withLockedValue { $0.divert = url }
  }

  /// Every request sent so far, in order.
  package var attempts: [Attempt] { state.withLockedValue { $0.attempts } }

  package func send(
    _ request: TokenRequest, caFile: String?, proxy: UpstreamProxy?, timeout: Double
  ) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    let at = now()
    var request = request
    let target = state.withLockedValue { s -> String? in
      s.attempts.append(Attempt(at: at, url: s.divert ?? request.url, diverted: s.divert != nil))
      return s.divert
    }
    if let target { request.url = target }
    return try await inner.send(request, caFile: caFile, proxy: proxy, timeout: timeout)
  }
}

extension BrokerHarness {
  /// `start`, with the real upstream client wrapped in a `SwitchableTransport`.
  package static func startSwitchable(
    providers: [ProviderConfig], secrets: [String: ResolvedSecrets], settings: BrokerSettings = .testDefaults,
    clock: ManualClock = ManualClock(), random: Double = 0.5
  ) async throws -> (BrokerHarness, SwitchableTransport) {
    var switchable: SwitchableTransport?
    let harness = try await start(
      providers: providers, secrets: secrets, settings: settings, clock: clock, random: random
    ) { transport in
      let s = SwitchableTransport(transport, now: { clock.now() })
      switchable = s
      return s
    }
    return (harness, switchable!)
  }
}

import Logging
import TokenBrokerCore

/// What every provider engine shares: the edges it talks to, injected so tests
/// swap in a manual clock and a fake upstream.
package struct EngineEnvironment: Sendable {
  package var transport: any TokenTransport
  package var clock: any BrokerClock
  package var store: StateStore
  /// Uniform in 0..<1; drives jitter.
  package var random: @Sendable () -> Double
  package var logger: Logger
  package var cache: TokenCache
  package var userAgent: String
  package var metrics: BrokerMetrics
  /// Raised after every refresh outcome (success or failure) of any engine.
  package var changes: ChangeSignal
  /// This broker's fleet under `[fleet]` (README "Fleet"); nil: every provider is local.
  package var fleet: FleetMember?

  package init(
    transport: any TokenTransport, clock: any BrokerClock, store: StateStore, logger: Logger,
    cache: TokenCache = TokenCache(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
    userAgent: String = "token-broker/\(BrokerVersion.current)", metrics: BrokerMetrics = BrokerMetrics(),
    changes: ChangeSignal = ChangeSignal(), fleet: FleetMember? = nil
  ) {
    self.fleet = fleet
    self.changes = changes
    self.metrics = metrics
    self.transport = transport
    self.clock = clock
    self.store = store
    self.random = random
    self.logger = logger
    self.cache = cache
    self.userAgent = userAgent
  }
}

package enum BrokerVersion {
  package static let current = "0.1.0"
}

enum RequestID {
  static func make() -> String {
    var g = SystemRandomNumberGenerator()
    let n = g.next() as UInt64
    let s = String(n, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
  }
}

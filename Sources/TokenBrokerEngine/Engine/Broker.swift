import Logging
import NIOConcurrencyHelpers
import TokenBrokerCore

/// All providers of the running configuration, and the access policy.
package final class Broker: Sendable {
  struct Snapshot {
    var config: BrokerConfig
    var engines: [String: ProviderEngine]
    var access: AccessPolicy
  }

  private let box: NIOLockedValueBox<Snapshot>
  package let environment: EngineEnvironment
  package let startedAt: Double

  package init(
    config: BrokerConfig, secrets: [String: ResolvedSecrets], access: AccessPolicy,
    environment: EngineEnvironment
  ) {
    var engines: [String: ProviderEngine] = [:]
    for p in config.providers {
      engines[p.name] = ProviderEngine(
        config: p, settings: config.broker, secrets: secrets[p.name] ?? ResolvedSecrets(),
        environment: environment)
    }
    self.box = NIOLockedValueBox(Snapshot(config: config, engines: engines, access: access))
    self.environment = environment
    self.startedAt = environment.clock.now()
  }

  func snapshot() -> Snapshot { box.withLockedValue { $0 } }
  func replace(_ s: Snapshot) { box.withLockedValue { $0 = s } }

  package var config: BrokerConfig { box.withLockedValue { $0.config } }
  package var access: AccessPolicy { box.withLockedValue { $0.access } }
  package var providerNames: [String] { box.withLockedValue { $0.config.providers.map(\.name) } }

  package func engine(named name: String) -> ProviderEngine? { box.withLockedValue { $0.engines[name] } }

  /// What answering a token request needs, read under one lock: no copy of the whole
  /// configuration and no scan of its providers per request.
  package struct ServingView {
    /// nil when there is no such provider.
    package var engine: ProviderEngine?
    package var minValid: Double
    package var access: AccessPolicy
  }

  package func servingView(provider name: String) -> ServingView {
    box.withLockedValue { s in
      let engine = s.engines[name]
      return ServingView(
        engine: engine, minValid: engine?.minValid ?? s.config.broker.minValid, access: s.access)
    }
  }

  package var engines: [ProviderEngine] {
    box.withLockedValue { s in s.config.providers.compactMap { s.engines[$0.name] } }
  }

  /// Starts every provider's first fetch.
  package func start() async {
    for e in engines { await e.start() }
  }

  /// Returns when every provider has had its first attempt (true), or after
  /// `timeout` seconds (false) even while some are still waiting.
  package func awaitFirstAttempts(timeout: Double) async -> Bool {
    let engines = self.engines
    let done = await withDeadline(seconds: timeout) {
      for e in engines { await e.awaitFirstAttempt() }
      return true
    }
    return done ?? false
  }

  package func statuses() async -> [ProviderStatus] {
    var out: [ProviderStatus] = []
    for e in engines { out.append(await e.status()) }
    return out
  }

  /// Waits for in-flight refreshes (tests).
  package func settle() async {
    for e in engines { await e.settle() }
  }

  package func stop() async {
    for e in engines { await e.stop() }
  }
}

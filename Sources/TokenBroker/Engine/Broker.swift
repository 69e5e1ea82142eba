import Logging
import NIOConcurrencyHelpers
import TokenBrokerCore

/// All providers of the running configuration, and the access policy.
public final class Broker: Sendable {
  struct Snapshot {
    var config: BrokerConfig
    var engines: [String: ProviderEngine]
    var access: AccessPolicy
  }

  private let box: NIOLockedValueBox<Snapshot>
  public let environment: EngineEnvironment
  public let startedAt: Double

  public init(
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

  public var config: BrokerConfig { box.withLockedValue { $0.config } }
  public var access: AccessPolicy { box.withLockedValue { $0.access } }
  public var providerNames: [String] { box.withLockedValue { $0.config.providers.map(\.name) } }

  public func engine(named name: String) -> ProviderEngine? { box.withLockedValue { $0.engines[name] } }

  /// What answering a token request needs, read under one lock: no copy of the whole
  /// configuration and no scan of its providers per request.
  struct ServingView {
    /// nil when there is no such provider.
    var engine: ProviderEngine?
    var minValid: Double
    var access: AccessPolicy
  }

  func servingView(provider name: String) -> ServingView {
    box.withLockedValue { s in
      let engine = s.engines[name]
      return ServingView(
        engine: engine, minValid: engine?.minValid ?? s.config.broker.minValid, access: s.access)
    }
  }

  var engines: [ProviderEngine] {
    box.withLockedValue { s in s.config.providers.compactMap { s.engines[$0.name] } }
  }

  /// Starts every provider's first fetch.
  public func start() async {
    for e in engines { await e.start() }
  }

  /// Returns when every provider has had its first attempt (true), or after
  /// `timeout` seconds (false) even while some are still waiting.
  public func awaitFirstAttempts(timeout: Double) async -> Bool {
    let engines = self.engines
    let done = await withDeadline(seconds: timeout) {
      for e in engines { await e.awaitFirstAttempt() }
      return true
    }
    return done ?? false
  }

  public func statuses() async -> [ProviderStatus] {
    var out: [ProviderStatus] = []
    for e in engines { out.append(await e.status()) }
    return out
  }

  /// Waits for in-flight refreshes (tests).
  public func settle() async {
    for e in engines { await e.settle() }
  }

  public func stop() async {
    for e in engines { await e.stop() }
  }
}

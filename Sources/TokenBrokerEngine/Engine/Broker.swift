import Logging
import NIOConcurrencyHelpers
import TokenBrokerCore

/// All providers of the running configuration, and the access policy.
package final class Broker: Sendable {
  struct Snapshot {
    var config: BrokerConfig
    var access: AccessPolicy
    /// Each provider's engine with what the socket's fast path reads, made once per (re)load.
    var serving: [String: ProviderServing] = [:]

    init(config: BrokerConfig, engines: [String: ProviderEngine], access: AccessPolicy) {
      self.config = config
      self.access = access
      for p in config.providers {
        guard let engine = engines[p.name] else { continue }
        serving[p.name] = ProviderServing(engine: engine, config: p, broker: config.broker)
      }
    }
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

  package func engine(named name: String) -> ProviderEngine? {
    box.withLockedValue { $0.serving[name]?.engine }
  }

  /// What answering a token request needs, read under one lock: no copy of the whole
  /// configuration and no scan of its providers per request.
  package struct ServingView {
    /// nil when there is no such provider.
    package var provider: ProviderServing?
    /// The caller may use the provider (`AccessPolicy.mayUse`); false without a caller.
    package var mayUse: Bool
  }

  /// The provider `name` and whether the caller with these credentials may use it, under one
  /// lock and without copying the access policy (the fast path runs this per request).
  package func servingView(provider name: String, uid: UInt32? = nil, gid: UInt32 = 0, groups: [UInt32] = [])
    -> ServingView
  {
    box.withLockedValue { s in
      ServingView(
        provider: s.serving[name],
        mayUse: uid.map { s.access.mayUse(provider: name, uid: $0, gid: gid, groups: groups) } ?? false)
    }
  }

  package var engines: [ProviderEngine] {
    box.withLockedValue { s in s.config.providers.compactMap { s.serving[$0.name]?.engine } }
  }

  /// Starts every provider's first fetch; a provider whose credential is unchanged since the
  /// run that wrote `handover` serves the tokens it hands over instead (README "Restarts and
  /// upgrades").
  package func start(handover: TokenHandover? = nil) async {
    for e in engines {
      await e.start(restored: handover?.tokens(provider: e.name, identity: e.identity) ?? [:])
    }
  }

  /// Every provider's tokens still servable, for the next run to take over.
  package func handover() async -> TokenHandover {
    var entries: [TokenHandover.Entry] = []
    for e in engines { entries += await e.handover() }
    return TokenHandover(entries: entries)
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

/// One provider as the socket serves it: its engine and the settings a request is checked
/// against, immutable and read with one reference (the fast path takes no other lock).
package final class ProviderServing: Sendable {
  package let engine: ProviderEngine
  package let config: ProviderConfig
  package let defaultScopes: ScopeSet
  /// The provider's effective min_valid: its own, else `[broker] min_valid`.
  package let minValid: Double

  init(engine: ProviderEngine, config: ProviderConfig, broker: BrokerSettings) {
    self.engine = engine
    self.config = config
    self.defaultScopes = ScopeSet(config.scopes)
    self.minValid = config.minValid ?? broker.minValid
  }
}

import Logging
import TokenBrokerCore

extension ProviderConfig {
  /// Equality that ignores where in the file the table sits.
  func sameSettings(as other: ProviderConfig) -> Bool {
    var a = self
    var b = other
    a.line = 0
    b.line = 0
    return a == b
  }
}

extension BrokerSettings {
  /// The settings a provider engine was built with.
  func sameEngineSettings(as o: BrokerSettings) -> Bool {
    refreshAt == o.refreshAt && refreshJitter == o.refreshJitter && minValid == o.minValid
      && requestTimeout == o.requestTimeout && scopeIdleTimeout == o.scopeIdleTimeout
  }
}

/// What a reload changed.
public struct ReloadSummary: Sendable, Equatable {
  public var added: [String] = []
  public var removed: [String] = []
  public var changed: [String] = []
  public var unchanged: [String] = []
}

extension Broker {
  /// Replaces the configuration: providers whose settings or secrets changed
  /// get a new engine; unchanged ones keep their engine and valid tokens.
  @discardableResult
  public func apply(_ loaded: LoadedConfig) async -> ReloadSummary {
    var summary = ReloadSummary()
    var toStart: [ProviderEngine] = []
    var toStop: [ProviderEngine] = []
    let old = snapshot()
    var engines: [String: ProviderEngine] = [:]
    let settingsSame = old.config.broker.sameEngineSettings(as: loaded.config.broker)
    for p in loaded.config.providers {
      let secrets = loaded.secrets[p.name] ?? ResolvedSecrets()
      if let existing = old.engines[p.name], settingsSame, existing.config.sameSettings(as: p),
        existing.secrets == secrets
      {
        engines[p.name] = existing
        summary.unchanged.append(p.name)
        continue
      }
      if let existing = old.engines[p.name] {
        toStop.append(existing)
        summary.changed.append(p.name)
      } else {
        summary.added.append(p.name)
      }
      let e = ProviderEngine(
        config: p, settings: loaded.config.broker, secrets: secrets, environment: environment)
      engines[p.name] = e
      toStart.append(e)
    }
    for (name, e) in old.engines where engines[name] == nil {
      toStop.append(e)
      summary.removed.append(name)
    }
    for e in toStop { await e.stop() }
    replace(Snapshot(config: loaded.config, engines: engines, access: loaded.access))
    for e in toStart { await e.start() }
    return summary
  }
}

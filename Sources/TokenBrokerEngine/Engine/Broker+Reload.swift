import Logging
import TokenBrokerCore

/// What a reload changed.
package struct ReloadSummary: Sendable, Equatable {
  package var added: [String] = []
  package var removed: [String] = []
  package var changed: [String] = []
  package var unchanged: [String] = []
}

extension Broker {
  /// Replaces the configuration. A provider whose credential identity (`token_url`,
  /// `client_id`, `username`, grant, configured refresh token) is unchanged keeps its
  /// engine: its refresh token, its request in flight and its valid tokens carry on under
  /// the new settings (`allow`, scopes, timing, a new client secret). One whose identity
  /// changed gets a new engine, started only once the old one has settled, so a
  /// credential is never used by two engines at once.
  @discardableResult
  package func apply(_ loaded: LoadedConfig) async -> ReloadSummary {
    var summary = ReloadSummary()
    var toStart: [ProviderEngine] = []
    var toRetire: [ProviderEngine] = []
    let old = snapshot()
    var engines: [String: ProviderEngine] = [:]
    for p in loaded.config.providers {
      let secrets = loaded.secrets[p.name] ?? ResolvedSecrets()
      if let existing = old.serving[p.name]?.engine {
        if existing.identity == CredentialIdentity(p, secrets: secrets) {
          let before = await existing.currentSettings()
          await existing.reconfigure(config: p, settings: loaded.config.broker, secrets: secrets)
          engines[p.name] = existing
          if before.config.sameSettings(as: p), before.secrets == secrets,
            before.settings.sameEngineSettings(as: loaded.config.broker)
          {
            summary.unchanged.append(p.name)
          } else {
            summary.changed.append(p.name)
          }
          continue
        }
        toRetire.append(existing)
        summary.changed.append(p.name)
      } else {
        summary.added.append(p.name)
      }
      let e = ProviderEngine(
        config: p, settings: loaded.config.broker, secrets: secrets, environment: environment)
      engines[p.name] = e
      toStart.append(e)
    }
    for (name, retired) in old.serving where engines[name] == nil {
      toRetire.append(retired.engine)
      summary.removed.append(name)
    }
    // The old engine's last request (and the write of what it brought back) ends first.
    for e in toRetire { await e.stop() }
    for e in toRetire { await e.settle() }
    replace(Snapshot(config: loaded.config, engines: engines, access: loaded.access))
    for e in toStart { await e.start() }
    return summary
  }
}

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
  /// The settings a provider engine runs with.
  func sameEngineSettings(as o: BrokerSettings) -> Bool {
    refreshAt == o.refreshAt && refreshJitter == o.refreshJitter && minValid == o.minValid
      && requestTimeout == o.requestTimeout && scopeIdleTimeout == o.scopeIdleTimeout
      && httpsProxy == o.httpsProxy && noProxy == o.noProxy
  }
}

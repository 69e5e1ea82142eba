/// The whole validated configuration: `[broker]` and every `[providers.NAME]`.
///
/// Built by ``ConfigParser`` from TOML text; every value here has been checked,
/// so the rest of the daemon never re-validates.
public struct BrokerConfig: Sendable, Equatable {
  public var broker: BrokerSettings
  /// Providers sorted by name.
  public var providers: [ProviderConfig]

  public init(broker: BrokerSettings, providers: [ProviderConfig]) {
    self.broker = broker
    self.providers = providers.sorted { $0.name < $1.name }
  }

  public func provider(named name: String) -> ProviderConfig? {
    providers.first { $0.name == name }
  }
}

public enum LogLevel: String, Sendable, Equatable, CaseIterable {
  case trace, debug, info, notice, warning, error
}

public enum LogTarget: String, Sendable, Equatable, CaseIterable {
  case auto, journal, console
}

/// `[broker]`.
public struct BrokerSettings: Sendable, Equatable {
  public var socket: String = "/run/token-broker.sock"
  /// Group that owns the bound socket (mode 0660); nil keeps the daemon's group.
  public var socketGroup: String? = nil
  public var stateDir: String = "/var/lib/token-broker"
  public var refreshAt: Double = 0.8
  public var refreshJitter: Double = 0.05
  /// Seconds; a token with less left is never served.
  public var minValid: Double = 30
  /// Seconds; hard deadline for one upstream request, body included.
  public var requestTimeout: Double = 10
  /// Seconds a per-request scope set may stay unused before its token is dropped.
  public var scopeIdleTimeout: Double = 900
  public var admins: [Principal] = []
  public var logLevel: LogLevel = .info
  public var logTarget: LogTarget = .auto

  public init() {}
}

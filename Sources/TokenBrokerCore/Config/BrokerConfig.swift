/// The whole validated configuration: `[broker]` and every `[providers.NAME]`.
///
/// Built by ``ConfigParser`` from TOML text; every value here has been checked,
/// so the rest of the daemon never re-validates.
package struct BrokerConfig: Sendable, Equatable {
  package var broker: BrokerSettings
  /// Providers sorted by name.
  package var providers: [ProviderConfig]
  /// `[fleet]`, when the brokers of several servers share their tokens (README "Fleet").
  package var fleet: FleetSettings?

  package init(broker: BrokerSettings, providers: [ProviderConfig], fleet: FleetSettings? = nil) {
    self.broker = broker
    self.providers = providers.sorted { $0.name < $1.name }
    self.fleet = fleet
  }

  /// Whether `provider` shares its tokens with the fleet: under `[fleet]`, unless it says
  /// `fleet = false` or is an api_key (nothing to refresh).
  package func sharesWithFleet(_ provider: ProviderConfig) -> Bool {
    fleet != nil && provider.fleet && provider.grant != .apiKey
  }

  package func provider(named name: String) -> ProviderConfig? {
    providers.first { $0.name == name }
  }
}

package enum LogLevel: String, Sendable, Equatable, CaseIterable {
  case trace, debug, info, notice, warning, error
}

package enum LogTarget: String, Sendable, Equatable, CaseIterable {
  case auto, journal, console
}

/// `[broker]`.
package struct BrokerSettings: Sendable, Equatable {
  package var socket: String = "/run/token-broker.sock"
  /// Group that owns the bound socket (mode 0660); nil keeps the daemon's group.
  package var socketGroup: String? = nil
  package var stateDir: String = "/var/lib/token-broker"
  package var refreshAt: Double = 0.8
  package var refreshJitter: Double = 0.05
  /// Seconds; a token with less left is never served.
  package var minValid: Double = 30
  /// Seconds; hard deadline for one upstream request, body included.
  package var requestTimeout: Double = 10
  /// Seconds a per-request scope set may stay unused before its token is dropped.
  package var scopeIdleTimeout: Double = 900
  package var admins: [Principal] = []
  package var logLevel: LogLevel = .info
  package var logTarget: LogTarget = .auto
  /// `https_proxy`: upstream requests go through this proxy (`proxy(for:)` decides per URL).
  package var httpsProxy: UpstreamProxy? = nil
  /// `no_proxy`: hosts and domains reached directly although `https_proxy` is set.
  package var noProxy: [String] = []
  /// `https_proxy_user` and `https_proxy_password` (a secret): the loader reads the password
  /// and puts both into `httpsProxy` as its credential.
  package var httpsProxyUser: String? = nil
  package var httpsProxyPassword: SecretSource? = nil

  package init() {}
}

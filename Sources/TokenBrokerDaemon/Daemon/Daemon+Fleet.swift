import Logging
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerSystemd

#if canImport(Glibc)
  import Glibc
#endif

/// `[fleet]` (README "Fleet"): the store and this broker's membership, made from the
/// configuration; nothing connects until the fleet service runs.
extension Daemon {
  struct FleetRefusal: Error, CustomStringConvertible {
    var description: String
  }

  func joinFleet(_ loaded: LoadedConfig) throws(FleetRefusal) -> (
    store: FleetProcessStore, member: FleetMember
  )? {
    guard let settings = loaded.config.fleet, let secrets = loaded.fleet else { return nil }
    let dsn: PostgresDSN
    do {
      dsn = try PostgresDSN(parsing: secrets.store)
    } catch {
      throw FleetRefusal(description: "\(loader?.path ?? "configuration"): fleet.store: \(error.description)")
    }
    let node = settings.node ?? Self.hostName()
    let setup = FleetWire.Setup(
      store: secrets.store, key: secrets.key, fleet: settings.name, node: node,
      logLevel: loaded.config.broker.logLevel.rawValue)
    if let missing = Self.missingFleetHelper(loaded, path: loader?.path ?? "configuration") {
      throw FleetRefusal(description: missing.description)
    }
    let store = FleetProcessStore(helper: FleetProcessStore.locateHelper(), setup: setup, logger: logger)
    let shared = loaded.config.providers.filter { loaded.config.sharesWithFleet($0) }.map(\.name)
    logger.info(
      "fleet \(settings.name) on \(dsn.endpoint) as node \(node): \(shared.isEmpty ? "no provider" : shared.joined(separator: ", ")) shared",
      metadata: ["event": "fleet_joined"])
    return (store, FleetMember(store: store, node: node, lease: settings.lease))
  }

  /// `[fleet]` on a server without the fleet's helper (the token-broker-fleet package): what
  /// to install. nil without `[fleet]` or with the helper in place. `--check-config` reports it
  /// too, as the start would.
  package static func missingFleetHelper(_ loaded: LoadedConfig, path: String) -> ConfigProblem? {
    guard loaded.config.fleet != nil else { return nil }
    let helper = FleetProcessStore.locateHelper()
    guard access(helper, X_OK) != 0 else { return nil }
    return ConfigProblem(
      path: path, line: 0,
      message:
        "[fleet] needs the fleet helper \(helper), which is not installed: "
        + "install the token-broker-fleet package (or remove [fleet]); README \"Fleet\"")
  }

  static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

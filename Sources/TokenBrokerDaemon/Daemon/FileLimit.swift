import Logging
import TokenBrokerAPI
import TokenBrokerEngine
import TokenBrokerServer

#if canImport(Glibc)
  import Glibc
#endif

/// Open-file limit for `ServerLimits.maxConnections` clients: systemd's default soft
/// limit (1024) is below it, so the soft limit is raised towards the hard one at start.
enum FileLimit {
  /// Descriptors beyond the client connections: state files, upstream connections, journald.
  static let reserve = 256

  static func raise(for limits: ServerLimits, logger: Logger) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let wanted = rlim_t(limits.maxConnections + reserve)
    guard limit.rlim_cur < wanted else { return }
    let before = limit.rlim_cur
    limit.rlim_cur = min(wanted, limit.rlim_max)
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 || limit.rlim_cur < wanted {
      logger.warning(
        "open-file limit \(limit.rlim_cur) is below the \(wanted) that \(limits.maxConnections) connections need; raise LimitNOFILE=",
        metadata: ["event": "file_limit"])
    } else {
      logger.debug(
        "open-file limit raised from \(before) to \(limit.rlim_cur)", metadata: ["event": "file_limit"])
    }
  }
}

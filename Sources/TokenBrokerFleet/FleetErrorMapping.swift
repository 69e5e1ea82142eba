import PostgresNIO
import TokenBrokerEngine

#if canImport(Glibc)
  import Glibc
#endif

/// Turns what postgres-nio throws into a `FleetStoreError` whose message names the fleet, what
/// the broker was doing (a row as `provider [scopes]`, never a token) and what to do. Only the
/// server's primary message and SQLSTATE are used: never a query, its parameters or the DSN.
struct FleetErrorContext: Sendable {
  var fleet: String
  /// `user@host:port/db`, no password.
  var endpoint: String
  var user: String

  static let tables = "token_broker_schema, token_broker_keycheck, token_broker_credentials"

  var grant: String {
    "GRANT SELECT, INSERT, UPDATE, DELETE ON \(Self.tables) TO \(quotedUser)"
  }

  var quotedUser: String { "\"" + user.replacingAll("\"", with: "\"\"") + "\"" }

  func unreachable(_ doing: String, _ reason: String) -> FleetStoreError {
    FleetStoreError(
      .unreachable,
      "fleet \(fleet): cannot \(doing): the database \(endpoint) is unreachable (\(reason)); "
        + "valid tokens keep being served and the broker retries: check that PostgreSQL is up and "
        + "reachable from this host")
  }

  func refused(_ doing: String, _ reason: String, _ todo: String) -> FleetStoreError {
    FleetStoreError(.refused, "fleet \(fleet): cannot \(doing): \(reason); \(todo)")
  }

  /// `error` as a `FleetStoreError` about `doing` (e.g. "claim the refresh of github [repo]").
  func map(_ error: any Error, _ doing: String) -> FleetStoreError {
    switch error {
    case let e as FleetStoreError: return e
    case let e as PostgresTransactionError:
      if let inner = e.closureError ?? e.commitError ?? e.beginError { return map(inner, doing) }
      return unreachable(doing, "the transaction failed")
    case let e as PSQLError: return map(e, doing)
    case is CancellationError: return unreachable(doing, "the request was cancelled")
    default:
      // postgres-nio's pool fails requests at once while it backs off after failed connections.
      if "\(type(of: error))".contains("ConnectionPoolError") {
        return unreachable(doing, "no connection could be made; the connection pool is backing off")
      }
      return unreachable(doing, "\(error)")
    }
  }

  private func map(_ e: PSQLError, _ doing: String) -> FleetStoreError {
    switch e.code {
    case .server:
      let state = e.serverInfo?[.sqlState] ?? "?????"
      let message = e.serverInfo?[.message] ?? "no message"
      return server(state: state, message: message, doing)
    case .sslUnsupported:
      return refused(
        doing, "the server at \(endpoint) does not offer TLS",
        "enable ssl on the server or, on a trusted network only, set sslmode=disable in the DSN")
    case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
      return refused(
        doing, "authentication as \(quotedUser) failed (\(e.code))",
        "check the user and password in the [fleet] store DSN and the server's pg_hba.conf")
    case .connectionError:
      return unreachable(doing, e.underlying.map(Self.reason) ?? "connection error")
    case .queryCancelled: return unreachable(doing, "the request was cancelled")
    default: return unreachable(doing, "\(e.code)")
    }
  }

  /// Why a connection failed, in a few words (no nested message): "Connection refused",
  /// "cannot resolve db.example.net", "password authentication failed ... (SQLSTATE 28P01)".
  static func reason(_ error: any Error) -> String {
    switch error {
    case let e as FleetStoreError: return e.message
    case let e as PostgresTransactionError:
      return (e.closureError ?? e.commitError ?? e.beginError).map(reason) ?? "the transaction failed"
    case let e as PSQLError:
      switch e.code {
      case .server:
        return "\(e.serverInfo?[.message] ?? "no message") (SQLSTATE \(e.serverInfo?[.sqlState] ?? "?"))"
      case .connectionError: return e.underlying.map(reason) ?? "connection error"
      default: return "\(e.code)"
      }
    case let e as NIOConnectionError:
      if e.dnsAError != nil || e.dnsAAAAError != nil { return "cannot resolve \(e.host)" }
      return e.connectionErrors.last.map { reason($0.error) } ?? "cannot connect to \(e.host):\(e.port)"
    case let e as IOError: return String(cString: strerror(e.errnoCode))
    case ChannelError.connectTimeout: return "the connection timed out"
    case is DeadlineExceeded: return "no answer in time"
    default: return "\(error)"
    }
  }

  /// SQLSTATE classes (PostgreSQL appendix A) sorted into what waits and what an operator fixes.
  func server(state: String, message: String, _ doing: String) -> FleetStoreError {
    let reason = "\(message) (SQLSTATE \(state))"
    switch state {
    case "42501":
      return refused(
        doing, "the database refused: \(reason)",
        "the role needs: \(grant); and, for the first broker to start, CREATE on the schema "
          + "(GRANT CREATE ON SCHEMA public TO \(quotedUser)) or the tables created by their owner")
    case "28P01", "28000":
      return refused(
        doing, "the database refused the login: \(reason)",
        "check the user and password in the [fleet] store DSN and the server's pg_hba.conf")
    case "3D000":
      return refused(
        doing, "the database refused: \(reason)",
        "create the database or fix its name in the [fleet] store DSN")
    case "25006":
      return unreachable(
        doing, "\(reason): the DSN names a read-only server (a standby?); point it at the primary")
    case "42P01", "42703":
      return refused(
        doing, "the fleet's tables are missing or altered: \(reason)",
        "restart the broker to recreate them, or restore them from a backup")
    default:
      if state.hasPrefix("08") || state.hasPrefix("57") || state.hasPrefix("53") || state.hasPrefix("40")
        || state.hasPrefix("58")
      {
        return unreachable(doing, reason)
      }
      return refused(doing, "the database refused: \(reason)", "see the PostgreSQL server log")
    }
  }
}

extension String {
  fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
    var out = ""
    for c in self { if c == target { out += replacement } else { out.append(c) } }
    return out
  }
}

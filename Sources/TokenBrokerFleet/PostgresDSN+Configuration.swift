import NIOSSL
import PostgresNIO
import TokenBrokerCore

/// The DSN as postgres-nio's configurations (the pool's and the LISTEN connection's).
extension PostgresDSN {
  /// libpq's meaning of `sslmode`: prefer and require do not check the certificate; verify-ca
  /// checks it against the trust roots; verify-full also checks that it names the host.
  func tlsConfiguration() -> TLSConfiguration {
    var tls = TLSConfiguration.makeClientConfiguration()
    switch sslMode {
    case .disable, .prefer, .require: tls.certificateVerification = .none
    case .verifyCA: tls.certificateVerification = .noHostnameVerification
    case .verifyFull: tls.certificateVerification = .fullVerification
    }
    if let sslRootCert { tls.trustRoots = .file(sslRootCert) }
    return tls
  }

  func clientConfiguration(connectTimeout: Duration, maximumConnections: Int) -> PostgresClient.Configuration
  {
    var c: PostgresClient.Configuration
    if let socketPath {
      c = .init(unixSocketPath: socketPath, username: user, password: password, database: database)
    } else {
      let tls: PostgresClient.Configuration.TLS =
        switch sslMode {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration())
        case .require, .verifyCA, .verifyFull: .require(tlsConfiguration())
        }
      c = .init(
        host: host ?? "localhost", port: port, username: user, password: password, database: database,
        tls: tls)
    }
    c.options.connectTimeout = connectTimeout
    c.options.maximumConnections = maximumConnections
    c.options.additionalStartupParameters = [("application_name", "token-broker")]
    return c
  }

  /// Throws when the TLS context cannot be made (an unreadable `sslrootcert`).
  func connectionConfiguration(
    connectTimeout: Duration, applicationName: String = "token-broker"
  ) throws -> PostgresConnection.Configuration {
    var c: PostgresConnection.Configuration
    if let socketPath {
      c = .init(unixSocketPath: socketPath, username: user, password: password, database: database)
    } else {
      let tls: PostgresConnection.Configuration.TLS
      switch sslMode {
      case .disable: tls = .disable
      case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
      case .require, .verifyCA, .verifyFull:
        tls = .require(try NIOSSLContext(configuration: tlsConfiguration()))
      }
      c = .init(
        host: host ?? "localhost", port: port, username: user, password: password, database: database,
        tls: tls)
    }
    let ms =
      connectTimeout.components.seconds * 1000 + connectTimeout.components.attoseconds / 1_000_000_000_000_000
    c.options.connectTimeout = .milliseconds(ms)
    c.options.additionalStartupParameters = [("application_name", applicationName)]
    return c
  }
}

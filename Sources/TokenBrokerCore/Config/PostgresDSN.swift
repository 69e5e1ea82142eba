/// A PostgreSQL connection URI, as libpq spells it: `postgresql://USER:PASS@HOST:PORT/DB?sslmode=...`
/// (also `postgres://`), percent-decoded; `?host=/run/postgresql` names a Unix socket directory
/// (the socket is `DIR/.s.PGSQL.PORT`). `description` and every error leave the password out.
package struct PostgresDSN: Sendable, Equatable, CustomStringConvertible {
  /// libpq's `sslmode` values that mean something here.
  package enum SSLMode: String, Sendable, Equatable, CaseIterable {
    /// Plain TCP.
    case disable
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    case prefer
    /// TLS or nothing, without checking the certificate.
    case require
    /// TLS, the certificate checked against the trust roots, not the host name.
    case verifyCA = "verify-ca"
    /// TLS, the certificate and the host name checked.
    case verifyFull = "verify-full"
  }

  package var user: String
  package var password: String?
  /// The TCP host; nil when `socketDirectory` is set.
  package var host: String?
  package var port: Int
  /// A Unix socket directory (`?host=/path`, or a host that starts with `/`).
  package var socketDirectory: String?
  package var database: String
  package var sslMode: SSLMode
  /// `?sslrootcert=PATH`: the CA bundle for verify-ca and verify-full (default: the system's).
  package var sslRootCert: String?

  package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
  }

  /// The Unix socket file, `DIR/.s.PGSQL.PORT`, when the DSN names a socket directory.
  package var socketPath: String? { socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } }

  /// Where it connects, for messages: `user@host:port/db` (never the password).
  package var endpoint: String {
    let place = socketPath ?? "\(host ?? "localhost"):\(port)"
    return "\(user)@\(place)/\(database)"
  }

  /// The URI with the password replaced by `<redacted>`.
  package var description: String {
    let auth = "\(user)\(password == nil ? "" : ":<redacted>")"
    if let socketDirectory {
      return "postgresql://\(auth)@/\(database)?host=\(socketDirectory)&port=\(port)"
    }
    let h = host ?? ""
    let hostPort = h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
    return "postgresql://\(auth)@\(hostPort)/\(database)?sslmode=\(sslMode.rawValue)"
  }

  package init(
    user: String, password: String?, host: String?, port: Int = 5432, socketDirectory: String? = nil,
    database: String, sslMode: SSLMode = .prefer, sslRootCert: String? = nil
  ) {
    self.user = user
    self.password = password
    self.host = host
    self.port = port
    self.socketDirectory = socketDirectory
    self.database = database
    self.sslMode = sslMode
    self.sslRootCert = sslRootCert
  }

  /// Parses `text` (surrounding white space and a final newline, as in a secret file, ignored).
  package init(parsing text: String) throws(ParseError) {
    let s = Substring(text).trimmingWhitespace()
    func fail(_ why: String) -> ParseError {
      ParseError(
        description: "the fleet store DSN is not a PostgreSQL URI (\(why)); expected "
          + "postgresql://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full")
    }
    var rest: Substring
    if s.hasPrefix("postgresql://") {
      rest = s.dropFirst("postgresql://".count)
    } else if s.hasPrefix("postgres://") {
      rest = s.dropFirst("postgres://".count)
    } else {
      throw fail("it does not start with postgresql:// or postgres://")
    }
    var query: Substring = ""
    if let q = rest.firstIndex(of: "?") {
      query = rest[rest.index(after: q)...]
      rest = rest[..<q]
    }
    var path: Substring = ""
    if let slash = rest.firstIndex(of: "/") {
      path = rest[rest.index(after: slash)...]
      rest = rest[..<slash]
    }
    // userinfo@hostport; the password may itself hold '@' only percent-encoded, but take the last '@'.
    var userInfo: Substring = ""
    if let at = rest.lastIndex(of: "@") {
      userInfo = rest[..<at]
      rest = rest[rest.index(after: at)...]
    }
    var user = ""
    var password: String?
    if let colon = userInfo.firstIndex(of: ":") {
      guard let u = Self.percentDecoded(userInfo[..<colon]) else {
        throw fail("the user name has a bad % escape")
      }
      guard let p = Self.percentDecoded(userInfo[userInfo.index(after: colon)...]) else {
        throw fail("the password has a bad % escape")
      }
      user = u
      password = p
    } else {
      guard let u = Self.percentDecoded(userInfo) else { throw fail("the user name has a bad % escape") }
      user = u
    }
    var host: String?
    var port = 5432
    var hostPart = rest
    if hostPart.hasPrefix("[") {  // [IPv6]:port
      guard let close = hostPart.firstIndex(of: "]") else { throw fail("an IPv6 address lacks its ]") }
      host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
      hostPart = hostPart[hostPart.index(after: close)...]
      if !hostPart.isEmpty {
        guard hostPart.hasPrefix(":") else { throw fail("unexpected text after the IPv6 address") }
        port = try Self.port(hostPart.dropFirst(), fail)
      }
    } else {
      if let colon = hostPart.lastIndex(of: ":") {
        port = try Self.port(hostPart[hostPart.index(after: colon)...], fail)
        hostPart = hostPart[..<colon]
      }
      if !hostPart.isEmpty {
        guard let h = Self.percentDecoded(hostPart) else { throw fail("the host has a bad % escape") }
        host = h
      }
    }
    guard var database = Self.percentDecoded(path) else { throw fail("the database name has a bad % escape") }
    var socketDirectory: String?
    var sslMode = SSLMode.prefer
    var sslRootCert: String?
    for pair in query.split(separator: "&") where !pair.isEmpty {
      let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard let name = Self.percentDecoded(parts[0]),
        let value = Self.percentDecoded(parts.count > 1 ? parts[1] : "")
      else { throw fail("a query parameter has a bad % escape") }
      switch name {
      case "sslmode":
        guard let mode = SSLMode(rawValue: value) else {
          throw fail(
            "sslmode=\(value) is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        sslMode = mode
      case "host": host = value
      case "port": port = try Self.port(Substring(value), fail)
      case "user": user = value
      case "dbname": database = value
      case "sslrootcert": sslRootCert = value
      case "application_name", "connect_timeout": continue
      default:
        throw fail(
          "the parameter \(name) is not supported (supported: sslmode, host, port, user, dbname, sslrootcert)"
        )
      }
    }
    if let h = host, h.hasPrefix("/") {
      socketDirectory = h
      host = nil
    }
    guard !user.isEmpty else { throw fail("it names no user") }
    guard host != nil || socketDirectory != nil else { throw fail("it names no host") }
    guard !database.isEmpty else { throw fail("it names no database") }
    self.init(
      user: user, password: password, host: host, port: port, socketDirectory: socketDirectory,
      database: database, sslMode: sslMode, sslRootCert: sslRootCert)
  }

  private static func port(_ text: Substring, _ fail: (String) -> ParseError) throws(ParseError) -> Int {
    guard let p = Int(text), (1...65535).contains(p) else { throw fail("the port \(text) is not 1-65535") }
    return p
  }

  /// `%XX` decoded (a `+` stays a `+`, as in libpq); nil on a bad escape or bytes that are not UTF-8.
  static func percentDecoded(_ text: Substring) -> String? {
    FormDecoding.decode(text, plusAsSpace: false)
  }
}

extension Substring {
  fileprivate func trimmingWhitespace() -> Substring {
    var s = self
    while let f = s.first, f.isWhitespace { s.removeFirst() }
    while let l = s.last, l.isWhitespace { s.removeLast() }
    return s
  }
}

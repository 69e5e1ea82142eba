import Testing
import TokenBrokerCore
import TokenBrokerFleet

/// libpq's URI form, as the `[fleet] store` secret holds it; the password never shows.
@Suite struct PostgresDSNTests {
  @Test func aFullURIIsParsed() throws {
    let dsn = try PostgresDSN(
      parsing: "postgresql://broker:s3cret@db.example.net:6543/tokens?sslmode=verify-full\n")
    #expect(
      dsn
        == PostgresDSN(
          user: "broker", password: "s3cret", host: "db.example.net", port: 6543, database: "tokens",
          sslMode: .verifyFull))
    #expect(dsn.socketPath == nil)
    #expect(
      dsn.description == "postgresql://broker:<redacted>@db.example.net:6543/tokens?sslmode=verify-full")
    #expect(dsn.endpoint == "broker@db.example.net:6543/tokens")
  }

  @Test func thePostgresSchemeDefaultPortAndSSLModeArePostgresqls() throws {
    let dsn = try PostgresDSN(parsing: "postgres://u@h/d")
    #expect(dsn.port == 5432)
    #expect(dsn.sslMode == .prefer)
    #expect(dsn.password == nil)
    #expect(dsn.description == "postgresql://u@h:5432/d?sslmode=prefer")
    for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
      #expect(try PostgresDSN(parsing: "postgres://u@h/d?sslmode=\(mode)").sslMode.rawValue == mode)
    }
  }

  @Test func percentEscapesAreDecoded() throws {
    let dsn = try PostgresDSN(parsing: "postgresql://br%40ker:p%3Aw%2Fd%40%25@h:1/my%20db")
    #expect(dsn.user == "br@ker")
    #expect(dsn.password == "p:w/d@%")
    #expect(dsn.database == "my db")
  }

  @Test func aPlusStaysAPlusAsInLibpq() throws {
    let dsn = try PostgresDSN(parsing: "postgresql://a+b:c+d%2B@h/e+f")
    #expect(dsn.user == "a+b")
    #expect(dsn.password == "c+d+")
    #expect(dsn.database == "e+f")
  }

  @Test func aHostDirectoryMeansAUnixSocket() throws {
    let dsn = try PostgresDSN(parsing: "postgresql://broker@/fleet?host=/run/postgresql")
    #expect(dsn.socketDirectory == "/run/postgresql")
    #expect(dsn.host == nil)
    #expect(dsn.socketPath == "/run/postgresql/.s.PGSQL.5432")
    let encoded = try PostgresDSN(parsing: "postgresql://broker@%2Ftmp%2Fpg:5433/fleet")
    #expect(encoded.socketPath == "/tmp/pg/.s.PGSQL.5433")
    let port = try PostgresDSN(parsing: "postgresql://broker@/fleet?host=/tmp/x&port=7000")
    #expect(port.socketPath == "/tmp/x/.s.PGSQL.7000")
  }

  @Test func anIPv6HostIsBracketed() throws {
    let dsn = try PostgresDSN(parsing: "postgresql://u:p@[::1]:5433/d?sslmode=disable")
    #expect(dsn.host == "::1")
    #expect(dsn.port == 5433)
    #expect(dsn.description == "postgresql://u:<redacted>@[::1]:5433/d?sslmode=disable")
  }

  @Test(arguments: [
    ("mysql://u:hunter2-pw@h/d", "does not start with"),
    ("postgresql://u:hunter2-pw@h/d?sslmode=allow", "sslmode=allow"),
    ("postgresql://u:hunter2-pw@h:99999/d", "port"),
    ("postgresql://u:hunter2-pw@h/", "no database"),
    ("postgresql://:hunter2-pw@h/d", "no user"),
    ("postgresql://u:hunter2-pw%zz@h/d", "password has a bad % escape"),
    ("postgresql://u:hunter2-pw@h/d?options=x", "options is not supported"),
    ("postgresql://u:hunter2-pw@/d", "no host"),
  ])
  func badURIsAreRefusedWithoutThePassword(_ text: String, _ why: String) {
    let error = #expect(throws: PostgresDSN.ParseError.self) { try PostgresDSN(parsing: text) }
    #expect(error?.description.contains(why) == true, "\(error?.description ?? "")")
    #expect(error?.description.contains("hunter2") == false)
  }
}

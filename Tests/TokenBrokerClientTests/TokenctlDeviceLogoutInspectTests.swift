import Foundation
import Testing
import TokenBrokerTestSupport

// `tokenctl login --device`, `logout` and `inspect` against a ``FakeDaemon`` (README
// "Logging in on a headless server").
extension TokenctlLoginTests {
  /// A daemon for the device flow: `states` are the answers to successive `?wait=30` polls.
  static func deviceDaemon(
    first: String = #"{"provider":"p","status":"none","methods":["device"]}"#, states: [String]
  )
    throws -> FakeDaemon
  {
    let polls = Locked(0)
    return try FakeDaemon { r in
      switch (r.method, r.target) {
      case ("GET", "/v1/providers/p/login"): return (200, first)
      case ("POST", "/v1/providers/p/login"):
        return (
          200,
          #"{"provider":"p","method":"device","verification_uri":"https://auth.example/device","#
            + #""verification_uri_complete":"https://auth.example/device?c=WDJB","user_code":"WDJB-MJHT","#
            + #""expires_in":900,"interval":5}"#
        )
      case ("GET", "/v1/providers/p/login?wait=30"):
        let n = polls.withLock { n in
          defer { n += 1 }
          return min(n, states.count - 1)
        }
        return (200, states[n])
      case ("GET", "/v1/status"): return (200, #"{"providers":[\#(status)]}"#)
      default: return (404, #"{"error":{"code":"not_found","message":"\#(r.target)"}}"#)
      }
    }
  }

  @Test func deviceLoginWaitsUntilDone() async throws {
    let pending = #"{"provider":"p","status":"pending","method":"device","expires_in":800}"#
    let daemon = try Self.deviceDaemon(states: [
      pending, pending, #"{"provider":"p","status":"done","method":"device"}"#,
    ])
    let r = try await LiveTokenctl(["--socket", daemon.path, "login", "p", "--device"]).finish()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("https://auth.example/device\n"))
    #expect(r.stderr.contains("and enter the code:  WDJB-MJHT"))
    #expect(r.stderr.contains("https://auth.example/device?c=WDJB"))
    #expect(r.stderr.contains("p: logged in"))
    #expect(r.stdout.contains("p         ok"))
    #expect(!r.stdout.contains("WDJB"))
    #expect(daemon.requests[1].body == #"{"method":"device"}"#)
    #expect(daemon.requests.filter { $0.target == "/v1/providers/p/login?wait=30" }.count == 3)
    #expect(daemon.requests.last?.target == "/v1/status")
  }

  @Test func deviceLoginDeniedOrExpiredIsExit1() async throws {
    for (state, message) in [
      ("denied", "the login of p was denied: access_denied by the user"),
      (
        "expired",
        "the code expired before it was approved: expired_token: run 'tokenctl login p --device' again"
      ),
    ] {
      let why = state == "denied" ? "access_denied by the user" : "expired_token"
      let daemon = try Self.deviceDaemon(states: [
        #"{"provider":"p","status":"\#(state)","method":"device","message":"\#(why)"}"#
      ])
      let r = try await LiveTokenctl(["--socket", daemon.path, "login", "p", "--device"]).finish()
      #expect(r.status == 1, "\(state)")
      #expect(r.stderr.contains("tokenctl: \(message)"), "\(r.stderr)")
      #expect(r.stdout.isEmpty)
    }
  }

  /// A device login still pending in the daemon (tokenctl was stopped) is shown again, not replaced.
  @Test func pendingDeviceLoginIsResumed() async throws {
    let pending =
      #"{"provider":"p","status":"pending","method":"device","verification_uri":"https://auth.example/device","#
      + #""user_code":"KEEP-CODE","expires_in":300,"interval":5}"#
    let daemon = try Self.deviceDaemon(
      first: pending, states: [#"{"provider":"p","status":"done","method":"device"}"#])
    let r = try await LiveTokenctl(["--socket", daemon.path, "login", "p", "--device"]).finish()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("already waiting"))
    #expect(r.stderr.contains("KEEP-CODE"))
    #expect(!daemon.requests.contains { $0.method == "POST" })
  }

  @Test func logoutSaysWhetherItRevoked() async throws {
    for revoked in [true, false] {
      let daemon = try FakeDaemon { r in
        guard r.method == "POST", r.target == "/v1/providers/p/logout" else { return (404, "{}") }
        return (
          200,
          #"{"name":"p","state":"needs_login","failures":0,"last_error":"run tokenctl login p","revoked":\#(revoked)}"#
        )
      }
      let r = try await LiveTokenctl(["--socket", daemon.path, "logout", "p"]).finish()
      #expect(r.status == 0)
      #expect(r.stdout.contains("needs_login"))
      #expect(
        r.stderr.contains(
          revoked
            ? "p: logged out; the refresh token was revoked at the provider and forgotten"
            : "p: logged out; the refresh token was forgotten but not revoked (providers.p has no revocation_url)"
        ),
        "\(r.stderr)")
    }
  }

  @Test func inspectListsAJWTsHeaderAndClaims() async throws {
    let now = Int(Date().timeIntervalSince1970)
    let body =
      #"{"provider":"p","format":"jwt","header":{"alg":"RS256","kid":"k1","typ":"JWT"},"#
      + #""claims":{"iss":"https://auth.example","sub":"svc","aud":["api","web"],"exp":\#(now + 3600),"#
      + #""iat":1700000000,"scope":"read write"}}"#
    let daemon = try FakeDaemon { r in
      r.target.hasPrefix("/v1/token/p/info") ? (200, body) : (404, "{}")
    }
    let r = try await LiveTokenctl(["--socket", daemon.path, "inspect", "p", "--scope", "read write"])
      .finish()
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n").map(String.init)
    #expect(lines.prefix(4) == ["provider  p", "format    jwt", "header", "  alg  RS256"])
    #expect(lines.contains("  iss    https://auth.example"))
    #expect(lines.contains(#"  aud    ["api","web"]"#))
    let iat = try #require(lines.first { $0.hasPrefix("  iat    1700000000  2023-11-14 22:13:20 UTC  (") })
    #expect(iat.hasSuffix(" s ago)"), "\(iat)")
    let exp = try #require(lines.first { $0.hasPrefix("  exp    \(now + 3600)  ") })
    #expect(exp.hasSuffix("UTC  (in 3600 s)") || exp.hasSuffix("UTC  (in 3599 s)"), "\(exp)")
    #expect(lines.contains("  scope  read write"))
    #expect(daemon.requests[0].target == "/v1/token/p/info?scope=read%20write")
    let json = try await LiveTokenctl(["--socket", daemon.path, "inspect", "p", "--json"]).finish()
    #expect(json.stdout == body + "\n")
    #expect(daemon.requests[1].target == "/v1/token/p/info")
  }
}

import Foundation
import Testing
import TokenBrokerTestSupport

/// `tokenctl login | logout | inspect` (README "Logging in on a headless server") against a
/// ``FakeDaemon``: the test plays the browser on the port tokenctl printed, or pastes on stdin.
@Suite struct TokenctlLoginTests {
  typealias Request = FakeDaemon.Request

  static let status = #"{"name":"p","state":"ok","expires_in":3600,"next_refresh_in":2880,"failures":0}"#

  /// A daemon for the browser flow: `redirect` is the configured redirect URI, `complete`
  /// the answer to `login/complete`.
  static func browserDaemon(
    redirect: String = "http://127.0.0.1/callback", expiresIn: Int = 600,
    complete: (Int, String) = (200, status)
  ) throws -> FakeDaemon {
    try FakeDaemon { r in
      switch (r.method, r.target) {
      case ("GET", "/v1/providers/p/login"):
        return (
          200,
          #"{"provider":"p","status":"none","methods":["browser","device"],"redirect_uri":"\#(redirect)"}"#
        )
      case ("POST", "/v1/providers/p/login"):
        return (
          200,
          #"{"provider":"p","method":"browser","authorization_url":"https://auth.example/authorize?state=xyz","#
            + #""expires_in":\#(expiresIn)}"#
        )
      case ("POST", "/v1/providers/p/login/complete"): return complete
      default: return (404, #"{"error":{"code":"not_found","message":"\#(r.target)"}}"#)
      }
    }
  }

  @Test func usageErrorsOfTheNewCommandsAre64() async throws {
    let tokenctl = try BuiltBinaries.path("tokenctl")
    let cases: [([String], String)] = [
      (["login"], "'login' needs a provider name"),
      (["login", "p", "--device", "--paste"], "'login' takes --device or --paste, not both"),
      (["login", "p", "--scope", "read"], "'login' takes no option '--scope'"),
      (["login", "p", "q"], "unexpected argument 'q'"),
      (["logout"], "'logout' needs a provider name"),
      (["logout", "p", "--json"], "'logout' takes no option '--json'"),
      (["inspect"], "'inspect' needs a provider name"),
      (["inspect", "p", "--min-valid", "5"], "'inspect' takes no option '--min-valid'"),
      (["inspect", "p", "--device"], "'inspect' takes no option '--device'"),
      ([], "missing a command (token, header, status, refresh, reload, login, logout or inspect)"),
    ]
    for (args, message) in cases {
      let r = try await ProcessRunner.run([tokenctl] + args)
      #expect(r.status == 64, "\(args)")
      #expect(r.stderr.hasPrefix("tokenctl: \(message)"), "\(args): \(r.stderr)")
      #expect(r.stdout.isEmpty)
    }
    let help = try await ProcessRunner.run([tokenctl, "--help"])
    #expect(help.stdout.contains("tokenctl [--socket PATH] login NAME [--device] [--paste]"))
    #expect(help.stdout.contains("tokenctl [--socket PATH] inspect NAME [--scope S] [--json]"))
    #expect(
      try await ProcessRunner.run([tokenctl, "login", "--help"]).stdout.contains("--device   device login"))
    let bash = try await ProcessRunner.run([tokenctl, "--generate-completion-script", "bash"]).stdout
    #expect(bash.contains("login logout inspect"))
    #expect(bash.contains("login) COMPREPLY=($(compgen -W \"--device --paste"))
    let fish = try await ProcessRunner.run([tokenctl, "--generate-completion-script", "fish"]).stdout
    #expect(fish.contains("__fish_seen_subcommand_from login' -l paste"))
  }

  /// The browser comes back to the listener: spare connections and other paths do not
  /// hold it up, the daemon gets the address as received, the browser a page, stdout the row.
  @Test func browserComesBackToTheListener() async throws {
    let daemon = try Self.browserDaemon()
    let ctl = try LiveTokenctl(["--socket", daemon.path, "login", "p"])
    let shown = try await ctl.waitForStderr("then press Enter")
    let port = try #require(LiveTokenctl.port(in: shown))
    #expect(shown.contains("https://auth.example/authorize?state=xyz"))
    #expect(shown.contains("ssh -L \(port):127.0.0.1:\(port) "))
    #expect(shown.contains("run this on the machine with the browser"))
    #expect(shown.contains("or paste the address your browser ended on"))
    let idle = try LoopbackConnection(port: port)  // a browser's spare connection, silent
    let favicon = try await browserGet(port: port, "/favicon.ico")
    #expect(favicon.hasPrefix("HTTP/1.1 404"))
    // A request over 8 KiB is refused; the listener goes on.
    let huge = try await browserGet(port: port, "/callback?code=" + String(repeating: "x", count: 9000))
    #expect(huge.hasPrefix("HTTP/1.1 431"))
    let noCode = try await browserGet(port: port, "/callback?state=xyz")
    #expect(noCode.hasPrefix("HTTP/1.1 400"))
    let page = try await browserGet(port: port, "/callback?code=abc&state=xyz")
    #expect(page.hasPrefix("HTTP/1.1 200"))
    #expect(page.contains("p: logged in. You can close this tab."))
    let r = try await ctl.finish()
    _ = idle
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("p: logged in"))
    #expect(r.stdout.hasPrefix("PROVIDER"))
    #expect(r.stdout.contains("p         ok"))
    #expect(!r.stdout.contains("auth.example"))
    let requests = daemon.requests
    #expect(requests.map(\.target).first == "/v1/providers/p/login")
    #expect(requests.count == 3)
    #expect(requests[1].body == #"{"method":"browser","redirect_uri":"http://127.0.0.1:\#(port)/callback"}"#)
    #expect(requests[2].body == #"{"redirect_url":"http://127.0.0.1:\#(port)/callback?code=abc&state=xyz"}"#)
  }

  /// A redirect with error=access_denied: the daemon says so, the browser and stderr too, exit 1.
  @Test func deniedLoginIsExit1AndTheBrowserIsTold() async throws {
    let daemon = try Self.browserDaemon(
      complete: (400, #"{"error":{"code":"access_denied","message":"the user said no"}}"#))
    let ctl = try LiveTokenctl(["--socket", daemon.path, "login", "p"])
    let port = try #require(LiveTokenctl.port(in: try await ctl.waitForStderr("then press Enter")))
    let page = try await browserGet(port: port, "/callback?error=access_denied&state=xyz")
    #expect(page.contains("the login failed (access_denied: the user said no)"))
    let r = try await ctl.finish()
    #expect(r.status == 1)
    #expect(
      r.stderr.contains("tokenctl: access_denied: the user said no\nrun 'tokenctl login p' to try again"))
    #expect(r.stdout.isEmpty)
    #expect(daemon.requests.last?.body.contains("error=access_denied") == true)
  }

  /// Pasting while the listener waits, on the configured port and path: a line that is no
  /// address is refused with a hint, the address is handed over as pasted.
  @Test func pastedAddressWhileListeningOnTheConfiguredPort() async throws {
    let free = try LoopbackConnection.freePort()
    let daemon = try Self.browserDaemon(redirect: "http://localhost:\(free)/cb")
    let ctl = try LiveTokenctl(["--socket", daemon.path, "login", "p"], stdin: .pipe)
    let shown = try await ctl.waitForStderr("then press Enter")
    #expect(shown.contains("ssh -L \(free):127.0.0.1:\(free) "))
    #expect(shown.contains("comes back to http://localhost:\(free)/cb"))
    ctl.paste("not an address")
    _ = try await ctl.waitForStderr("paste the whole address")
    ctl.paste("https://elsewhere.example/cb?state=xyz")
    _ = try await ctl.waitForStderr("that address has no code=")
    ctl.paste("  http://localhost/cb?code=abc&state=xyz  ")
    let r = try await ctl.finish()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(daemon.requests[1].body == #"{"method":"browser","redirect_uri":"http://localhost:\#(free)/cb"}"#)
    #expect(daemon.requests[2].body == #"{"redirect_url":"http://localhost/cb?code=abc&state=xyz"}"#)
  }

  /// `--paste`: no listener, no redirect_uri of tokenctl's, the address from stdin.
  @Test func pasteOnlyReadsStdin() async throws {
    let daemon = try Self.browserDaemon()
    let ctl = try LiveTokenctl(
      ["--socket", daemon.path, "login", "p", "--paste"],
      stdin: .file("http://127.0.0.1/callback?code=abc&state=xyz\n"))
    let r = try await ctl.finish()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(!r.stderr.contains("ssh -L"))
    #expect(r.stderr.contains("paste the address your browser ended on"))
    #expect(daemon.requests.map(\.target) == ["/v1/providers/p/login", "/v1/providers/p/login/complete"])
    #expect(daemon.requests[0].body == #"{"method":"browser"}"#)
    #expect(daemon.requests[1].body == #"{"redirect_url":"http://127.0.0.1/callback?code=abc&state=xyz"}"#)
    // Nothing pasted: stdin ends, exit 1 with what to do.
    let empty = try LiveTokenctl(["--socket", daemon.path, "login", "p", "--paste"], stdin: .file(""))
    let e = try await empty.finish()
    #expect(e.status == 1)
    #expect(e.stderr.contains("stdin ended before an address was pasted"))
  }

  /// A login whose expires_in passes without the browser: exit 1, run it again.
  @Test func loginThatExpiresIsExit1() async throws {
    let daemon = try Self.browserDaemon(expiresIn: 1)
    let r = try await LiveTokenctl(["--socket", daemon.path, "login", "p"]).finish()
    #expect(r.status == 1)
    #expect(r.stderr.contains("the login expired before the browser came back: run 'tokenctl login p' again"))
  }

  @Test func daemonRefusalsKeepTheirExitCodes() async throws {
    let daemon = try FakeDaemon { _ in (403, #"{"error":{"code":"forbidden","message":"admins only"}}"#) }
    let forbidden = try await LiveTokenctl(["--socket", daemon.path, "login", "p"]).finish()
    #expect(forbidden.status == 77)
    let unreachable = try await LiveTokenctl(["--socket", "/tmp/no-such-tb-login.sock", "logout", "p"])
      .finish()
    #expect(unreachable.status == 69)
    let deviceOnly = try FakeDaemon { _ in (200, #"{"provider":"p","status":"none","methods":["device"]}"#) }
    let r = try await LiveTokenctl(["--socket", deviceOnly.path, "login", "p"]).finish()
    #expect(r.status == 64)
    #expect(r.stderr.contains("providers.p has no authorize_url; use 'tokenctl login p --device'"))
  }
}

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

extension LoopbackConnection {
  /// A port free on 127.0.0.1 a moment ago (bound to 0, then closed).
  static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
        bind(fd, p, length) == 0 ? getsockname(fd, p, &length) : -1
      }
    }
    guard rc == 0 else { throw SetupError.errno("bind 127.0.0.1:0") }
    return Int(UInt16(bigEndian: addr.sin_port))
  }
}

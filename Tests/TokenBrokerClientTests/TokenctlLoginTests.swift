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

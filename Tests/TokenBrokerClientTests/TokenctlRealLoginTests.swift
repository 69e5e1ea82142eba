import Foundation
import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// `tokenctl login` against the real daemon and the fake upstream's authorization endpoint:
/// the browser comes back to tokenctl's loopback listener, or its address is pasted.
@Suite struct TokenctlRealLoginTests {
  static func with(_ body: (Single) async throws -> Void) async throws {
    try await Single.with(
      .powerverse, grant: .authorizationCode, scopes: ["read:sites"],
      configure: { p, secrets, upstream in
        p.clientAuth = .clientSecretPost
        p.body = .form
        secrets.clientSecret = upstream.settings.clientSecret
        p.login.authorizeURL = upstream.authorizeURL
        p.login.revocationURL = upstream.revokeURL
      }, body)
  }

  /// The authorization URL tokenctl printed (a line of its own, indented).
  static func authorizationURL(in stderr: String) -> String? {
    stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .first { $0.hasPrefix("http://127.0.0.1") && $0.contains("response_type=code") }
  }

  @Test func theBrowserComesBackToTokenctlsListenerAndTheDaemonHoldsTheRefreshToken() async throws {
    try await Self.with { s in
      let ctl = try LiveTokenctl(["--socket", s.harness.socketPath, "login", "p"])
      let shown = try await ctl.waitForStderr("then press Enter")
      let port = try #require(LiveTokenctl.port(in: shown))
      let url = try #require(Self.authorizationURL(in: shown))
      // The browser: the provider approves and redirects to tokenctl's port.
      let location = try await FakeUpstream.followAuthorization(url)
      #expect(location.hasPrefix("http://127.0.0.1:\(port)/callback?code="))
      let target = String(location.dropFirst("http://127.0.0.1:\(port)".count))
      let page = try await browserGet(port: port, target)
      #expect(page.contains("logged in"))
      let r = try await ctl.finish()
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains(" ok "))
      #expect(await s.status().state == .ok)
      // The refresh token went from the provider to the daemon's state file, never through tokenctl.
      let refresh = try #require(s.upstream.issuedRefreshTokens.last)
      #expect(!r.stdout.contains(refresh) && !r.stderr.contains(refresh))
      #expect(try StateStore(directory: s.harness.stateDir).load("p")?.refreshToken == refresh)
      let logout = try await ProcessRunner.run(
        [try BuiltBinaries.path("tokenctl"), "--socket", s.harness.socketPath, "logout", "p"])
      #expect(logout.status == 0, "\(logout.stderr)")
      #expect(s.upstream.revokedTokens.contains(refresh))
    }
  }

  @Test func thePastedAddressCompletesALoginWithoutAListener() async throws {
    try await Self.with { s in
      let ctl = try LiveTokenctl(["--socket", s.harness.socketPath, "login", "p", "--paste"], stdin: .pipe)
      let shown = try await ctl.waitForStderr("paste the address")
      #expect(!shown.contains("ssh -L"))
      let url = try #require(
        shown.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
          .first { $0.contains("response_type=code") })
      let location = try await FakeUpstream.followAuthorization(url)
      #expect(location.hasPrefix("http://127.0.0.1/callback?code="))
      ctl.paste(location)
      let r = try await ctl.finish()
      #expect(r.status == 0, "\(r.stderr)")
      #expect(await s.status().state == .ok)
    }
  }
}

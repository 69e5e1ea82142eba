import Foundation
import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// tokenctl's exit codes and messages (README "tokenctl"), against a real socket.
@Suite struct TokenctlTests {
  func tokenctl(_ args: [String], environment: [String: String]? = nil) async throws -> ProcessOutput {
    try await ProcessRunner.run([try BuiltBinaries.path("tokenctl")] + args, environment: environment)
  }

  @Test func daemonNotRunningIs69WithWhatToDo() async throws {
    let r = try await tokenctl(["--socket", "/tmp/no-such-token-broker.sock", "token", "x"])
    #expect(r.status == 69)
    #expect(r.stderr.contains("is token-brokerd running?"))
    let env = ["TOKEN_BROKER_SOCKET": "/tmp/no-such-token-broker-env.sock"]
    let viaEnv = try await tokenctl(["status"], environment: env)
    #expect(viaEnv.status == 69)
    #expect(viaEnv.stderr.contains("/tmp/no-such-token-broker-env.sock"))
  }

  @Test func usageErrorsAre64() async throws {
    #expect(try await tokenctl(["token"]).status == 64)
    #expect(try await tokenctl(["frobnicate"]).status == 64)
    #expect(try await tokenctl([]).status == 64)
    let cases: [([String], String)] = [
      (["token"], "'token' needs a provider name"),
      (["frobnicate"], "unknown command 'frobnicate'"),
      (["token", "energy", "--min-valid", "soon"], "--min-valid takes whole seconds, not 'soon'"),
      (["token", "energy", "--bogus"], "unknown option '--bogus'"),
      (["status", "--scope", "read"], "'status' takes no option '--scope'"),
      (["reload", "now"], "unexpected argument 'now'"),
      (["token", "a", "b"], "unexpected argument 'b'"),
      (["token", "energy", "--socket"], "missing value for '--socket'"),
      (["--generate-completion-script", "tcsh"], "no completion script for 'tcsh'"),
    ]
    for (args, message) in cases {
      let r = try await tokenctl(args)
      #expect(r.status == 64, "\(args)")
      #expect(r.stderr.hasPrefix("tokenctl: \(message)"), "\(args): \(r.stderr)")
      #expect(r.stdout.isEmpty)
    }
  }

  @Test func helpAndVersion() async throws {
    let help = try await tokenctl(["--help"])
    #expect(help.status == 0)
    #expect(help.stdout.contains("tokenctl [--socket PATH] token NAME [--scope S] [--min-valid N] [--json]"))
    let tokenHelp = try await tokenctl(["help", "token"])
    #expect(tokenHelp.stdout.contains("--min-valid N    seconds the token must still be valid"))
    #expect(try await tokenctl(["token", "--help"]).stdout == tokenHelp.stdout)
    #expect(try await tokenctl(["--version"]).stdout == "0.1.0\n")
  }

  /// `--socket PATH`, `--socket=PATH`, before or after the subcommand.
  @Test func socketOptionAnywhere() async throws {
    for args in [
      ["--socket", "/tmp/no-such-tb-1.sock", "status"], ["status", "--socket", "/tmp/no-such-tb-1.sock"],
      ["--socket=/tmp/no-such-tb-1.sock", "status"], ["token", "x", "--socket=/tmp/no-such-tb-1.sock"],
    ] {
      let r = try await tokenctl(args)
      #expect(r.status == 69, "\(args)")
      #expect(r.stderr.contains("/tmp/no-such-tb-1.sock"), "\(args)")
    }
  }

  @Test func tokenHeaderJSONAndScopes() async throws {
    try await Single.with(.energy, name: "energy", scopes: ["read"], allowed: ["read", "write"]) {
      s async throws in
      let sock = s.harness.socketPath
      let plain = try await tokenctl(["--socket", sock, "token", "energy"])
      #expect(plain.status == 0)
      #expect(plain.stdout == s.upstream.issuedAccessTokens[0] + "\n")
      let env = try await tokenctl(["token", "energy", "--json"], environment: ["TOKEN_BROKER_SOCKET": sock])
      #expect(env.stdout.contains(#""provider":"energy""#))
      let header = try await tokenctl(["header", "energy", "--socket", sock])
      #expect(header.stdout == "Authorization: Bearer \(s.upstream.issuedAccessTokens[0])\n")
      let scoped = try await tokenctl([
        "--socket", sock, "token", "energy", "--scope", "read write", "--min-valid", "60",
      ])
      #expect(scoped.status == 0)
      #expect(s.upstream.requests.last?.form["scope"] == "read write")
      let badScope = try await tokenctl(["--socket", sock, "token", "energy", "--scope", "admin"])
      #expect(badScope.status == 64)
      #expect(badScope.stderr.contains("not in providers.energy.allowed_scopes"))
    }
  }

  @Test func unknownProviderSuggestsTheNearestName() async throws {
    try await Single.with(.energy, name: "energy") { s async throws in
      let r = try await tokenctl(["--socket", s.harness.socketPath, "token", "enrgy"])
      #expect(r.status == 1)
      #expect(r.stderr == "tokenctl: unknown_provider: no provider named enrgy; did you mean 'energy'?\n")
    }
  }

  @Test func temporarilyUnavailableIs75() async throws {
    try await Single.with(.energy, tweak: { _, secrets in secrets.clientSecret = "wrong-secret" }) {
      s async throws in
      let r = try await tokenctl(["--socket", s.harness.socketPath, "token", "p"])
      #expect(r.status == 75)
      #expect(r.stderr.contains("unavailable: p: upstream 401 invalid_client"))
      #expect(r.stderr.contains("(retry in "))
      let status = try await tokenctl(["--socket", s.harness.socketPath, "status"])
      #expect(status.stdout.contains("failed"))
      #expect(status.stdout.contains("upstream 401 invalid_client: bad credentials"))
    }
  }

  @Test func completionScriptsAreGenerated() async throws {
    let r = try await tokenctl(["--generate-completion-script", "bash"])
    #expect(r.status == 0)
    #expect(r.stdout.contains("_tokenctl"))
    #expect(r.stdout.contains("complete -F _tokenctl tokenctl"))
    let zsh = try await tokenctl(["--generate-completion-script", "zsh"])
    #expect(zsh.stdout.hasPrefix("#compdef tokenctl"))
    let fish = try await tokenctl(["--generate-completion-script=fish"])
    #expect(fish.stdout.contains("complete -c tokenctl"))
  }

  /// A daemon that goes away mid-answer (killed, restarted) must not make tokenctl print a
  /// cut token with exit 0: a body shorter than its Content-Length is exit 69.
  @Test func answerShorterThanContentLengthIs69AndPrintsNothing() async throws {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    for cut in [0, 20] {
      let server = try OneAnswerServer(
        answer: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(token.utf8.count)\r\n\r\n"
          + String(token.prefix(cut)))
      let r = try await tokenctl(["--socket", server.path, "token", "energy"])
      #expect(r.status == 69, "\(cut): \(r.stderr)")
      #expect(r.stdout.isEmpty)
      #expect(r.stderr.contains("token-brokerd closed the connection before the whole answer arrived"))
    }
    let whole = try OneAnswerServer(
      answer:
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(token.utf8.count)\r\n\r\n\(token)")
    let r = try await tokenctl(["--socket", whole.path, "token", "energy"])
    #expect(r.status == 0)
    #expect(r.stdout == token + "\n")
  }
}

extension TokenctlTests {
  /// Under socket activation a failing service leaves systemd to accept and close: tokenctl
  /// says the daemon did not answer and what to run, with exit 69 (unreachable), not 1.
  @Test func aConnectionClosedWithoutAnAnswerIs69WithWhatToDo() async throws {
    let server = try OneAnswerServer(answer: "")
    let r = try await tokenctl(["--socket", server.path, "token", "energy"])
    #expect(r.status == 69, "\(r.stderr)")
    #expect(r.stdout.isEmpty)
    #expect(
      r.stderr.contains(
        "token-brokerd did not answer; it may have failed to start: systemctl status token-broker"),
      "\(r.stderr)")
  }
}

/// A Unix socket that answers its first connection with `answer` (after the request head)
/// and closes it: a daemon that dies mid-answer.
final class OneAnswerServer: Sendable {
  let path: String

  init(answer: String) throws {
    path = try TempDirectory.make("tb-short") + "/s.sock"
    let fd = try UnixSocketAddress.boundSocket(type: Int32(SOCK_STREAM.rawValue), path: path)
    guard listen(fd, 1) == 0 else {
      close(fd)
      throw SetupError.errno("listen \(path)")
    }
    Thread {
      defer { close(fd) }
      let c = accept(fd, nil, nil)
      guard c >= 0 else { return }
      defer { close(c) }
      var head: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 4096)
      while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
        let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress!, $0.count, 0) }
        guard n > 0 else { return }
        head += chunk[0..<n]
      }
      let bytes = Array(answer.utf8)
      _ = bytes.withUnsafeBytes { send(c, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }.start()
  }
}

extension TokenctlTests {
  /// A provider whose tokens live no longer than its min_valid can never be served: status
  /// `failed` naming the key, and tokenctl says so with exit 1 and no pointless retry hint.
  @Test func tokensThatCanNeverMeetMinValidSayWhichKeyToChange() async throws {
    var up = FakeUpstream.Settings()
    up.lifetime = 30
    try await Single.with(.energy, name: "short", upstreamSettings: up) { s async throws in
      let status = await s.status()
      #expect(status.state == .failed)
      #expect(
        status.lastError?.contains("lower [broker] min_valid (or set providers.short.min_valid)") == true)
      let r = try await tokenctl(["--socket", s.harness.socketPath, "token", "short"])
      #expect(r.status == 1)
      #expect(r.stderr.contains("misconfigured: short issues tokens valid for 30 s"), "\(r.stderr)")
      #expect(!r.stderr.contains("retry in"), "\(r.stderr)")
      #expect(r.stdout.isEmpty)
    }
    // With providers.NAME.min_valid below the lifetime the same tokens are served.
    try await Single.with(.energy, name: "short", upstreamSettings: up, tweak: { p, _ in p.minValid = 5 }) {
      s async throws in
      #expect(await s.status().state == .ok)
      let r = try await tokenctl(["--socket", s.harness.socketPath, "token", "short"])
      #expect(r.status == 0)
    }
  }
}

extension TokenctlTests {
  /// Under `[fleet]` `tokenctl status` shows each shared token's role and who refreshed it,
  /// and a store that cannot be reached; a local provider says `local`.
  @Test func statusShowsTheFleetRoleAndHolder() async throws {
    let body = """
      {"providers":[
      {"name":"a","grant":"refresh_token","state":"ok","expires_in":900,"failures":0,"fleet":{"role":"refresher","holder":"web-1","store":"ok"}},
      {"name":"b","grant":"password","state":"ok","expires_in":900,"failures":0,"fleet":{"role":"follower","holder":"web-2","store":"unreachable"}},
      {"name":"c","grant":"client_credentials","state":"ok","expires_in":900,"failures":0}
      ]}
      """
    let daemon = try FakeDaemon { _ in (200, body) }
    let r = try await tokenctl(["--socket", daemon.path, "status"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n").map(String.init)
    #expect(lines.first?.contains("FLEET") == true, "\(r.stdout)")
    #expect(lines.contains { $0.hasPrefix("a ") && $0.contains("refresher") }, "\(r.stdout)")
    #expect(lines.contains { $0.hasPrefix("b ") && $0.contains("follower of web-2, store unreachable") })
    #expect(lines.contains { $0.hasPrefix("c ") && $0.contains("local") })
  }

  @Test func statusWithoutAFleetHasNoFleetColumn() async throws {
    let daemon = try FakeDaemon { _ in
      (
        200,
        #"{"providers":[{"name":"c","grant":"client_credentials","state":"ok","expires_in":900,"failures":0}]}"#
      )
    }
    let r = try await tokenctl(["--socket", daemon.path, "status"])
    #expect(r.status == 0)
    #expect(!r.stdout.contains("FLEET"), "\(r.stdout)")
  }
}

import Foundation
import TokenBrokerTestSupport

struct TokenctlParameters: Sendable {
  var runs = 200

  init(quick: Bool) {
    if quick { runs = 30 }
  }

  func command(_ bench: BenchEnvironment) -> String { "\(bench.invocation) tokenctl --runs \(runs)" }
}

/// `tokenctl token NAME` as a whole process (spawn to reaped exit), against `oidc-token`
/// asking oidc-agent for its cached access token: both ask a local agent over a Unix socket.
struct TokenctlBench: Sendable {
  var parameters: TokenctlParameters

  static let title = "tokenctl: `tokenctl token NAME` as a whole process"

  func run(_ bench: BenchEnvironment) async throws -> BenchTable {
    let upstream = FakeUpstream(.energy, now: { Date().timeIntervalSince1970 })
    try await upstream.start()
    let result = await Result { try await offload { try measure(bench, upstream) } }
    await upstream.stop()
    return try result.get()
  }

  private func measure(_ bench: BenchEnvironment, _ upstream: FakeUpstream) throws -> BenchTable {
    var table = BenchTable(Self.title)
    let command = parameters.command(bench)
    let daemon = try DaemonUnderTest.start(bench) { dir in
      BenchConfig.broker(in: dir) + BenchConfig.oauth("oauth", upstream)
    }
    defer { daemon.stop() }
    var reference: OIDCAgentReference?
    var referenceProblem: String?
    do { reference = try OIDCAgentReference.start(bench) } catch { referenceProblem = "\(error)" }
    defer { reference?.stop() }

    // As a user's shell runs them: the Swift crash backtracer left at its default.
    var env = ChildProcess.minimalEnvironment()
    env.removeValue(forKey: "SWIFT_BACKTRACE")
    let tokenctl = [bench.tokenctl, "--socket", daemon.socket, "token", "oauth"]
    let check = try ChildProcess.run(tokenctl[0], Array(tokenctl.dropFirst()), environment: env, within: 30)
    guard check.status == 0, check.stdout.hasPrefix("at_energy_") else {
      throw SetupError("tokenctl token oauth: exit \(check.status), \(check.stdout) \(check.stderr)")
    }
    var candidates: [(name: String, argv: [String], env: [String: String])] = [
      ("tokenctl", tokenctl, env), ("true", ["/bin/true"], env),
    ]
    if let reference {
      var oidcEnv = reference.environment
      oidcEnv.removeValue(forKey: "SWIFT_BACKTRACE")
      candidates.append(("oidc-token", reference.argv, oidcEnv))
    }
    var times: [String: [Double]] = [:]
    // Warm the page cache and both agents, then alternate (order rotates every run).
    for c in candidates { for _ in 0..<5 { _ = try wallTime(c.argv, environment: c.env) } }
    note("tokenctl: \(parameters.runs) runs of each of \(candidates.map(\.name).joined(separator: ", "))")
    for i in 0..<parameters.runs {
      for k in 0..<candidates.count {
        let c = candidates[(i + k) % candidates.count]
        let r = try wallTime(c.argv, environment: c.env)
        guard r.status == 0 else { throw SetupError("\(c.argv.joined(separator: " ")) exited \(r.status)") }
        times[c.name, default: []].append(r.seconds)
      }
    }
    func summary(_ name: String) -> (median: Double, p90: Double) {
      (Stats.median(times[name] ?? []), Stats.percentile(times[name] ?? [], 0.9))
    }
    let ours = summary("tokenctl")
    let floor = summary("true")
    table.notes = [
      "Load average \(Proc.loadAverage) at the end. Wall time from posix_spawn to the reaped exit, stdout to "
        + "/dev/null; \(parameters.runs) runs each, alternating; the token is cached in both agents.",
      reference.map {
        "Reference: \($0.version) (`oidc-token \(OIDCAgentReference.account)`) with oidc-agent set up by oidc-gen "
          + "(refresh-token flow) against a minimal in-process OpenID provider on 127.0.0.1; oidc-agent keeps "
          + "the access token in memory and answers over its Unix socket, as token-brokerd does. Not compared: "
          + "either agent's refresh path, oidc-agent's encrypted account storage."
      } ?? "No oidc-token comparison: \(referenceProblem ?? "?")",
    ]
    if let reference {
      let theirs = summary("oidc-token")
      table.add(
        Figure(
          "tokenctl token oauth: median wall",
          "\(Format.ms(ours.median)) (p90 \(Format.ms(ours.p90)))",
          goal: "≤ oidc-token (\(Format.ms(theirs.median)))", .check(ours.median <= theirs.median),
          command: command))
      table.add(
        Figure(
          "oidc-token \(OIDCAgentReference.account) (cached access token): median wall",
          "\(Format.ms(theirs.median)) (p90 \(Format.ms(theirs.p90)))", command: command))
      table.notes.append(
        "Upstream requests during the runs: fake OpenID provider \(reference.provider.tokenRequestCount) "
          + "(the one of oidc-gen), fake OAuth upstream \(upstream.requestCount) (the daemon's first fetch).")
    } else {
      table.add(
        Figure(
          "tokenctl token oauth: median wall", "\(Format.ms(ours.median)) (p90 \(Format.ms(ours.p90)))",
          goal: "≤ oidc-token", .skipped, command: command))
    }
    table.add(
      Figure(
        "process floor: /bin/true, median wall", "\(Format.ms(floor.median)) (p90 \(Format.ms(floor.p90)))",
        command: command))
    return table
  }
}

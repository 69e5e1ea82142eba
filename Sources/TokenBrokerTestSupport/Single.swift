import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine

/// One fake upstream and a broker with one provider against it: the fixture of the engine,
/// API and client tests.
package struct Single: Sendable {
  package let upstream: FakeUpstream
  package let harness: BrokerHarness
  package let name: String

  package init(upstream: FakeUpstream, harness: BrokerHarness, name: String) {
    self.upstream = upstream
    self.harness = harness
    self.name = name
  }

  package static func start(
    _ dialect: FakeUpstream.Dialect, name: String = "p", grant: Grant? = nil, scopes: [String] = [],
    allowed: [String]? = nil, upstreamSettings: FakeUpstream.Settings = FakeUpstream.Settings(),
    settings: BrokerSettings = .testDefaults, clock: ManualClock = ManualClock(), stateDir: String? = nil,
    tweak: (inout ProviderConfig, inout ResolvedSecrets) -> Void = { _, _ in },
    configure: (inout ProviderConfig, inout ResolvedSecrets, FakeUpstream) -> Void = { _, _, _ in }
  ) async throws -> Single {
    let upstream = FakeUpstream(dialect, settings: upstreamSettings, now: { clock.now() })
    try await upstream.start()
    var (p, secrets) = SeedProviders.config(name, for: upstream, grant: grant, scopes: scopes)
    if let allowed { p.allowedScopes = allowed }
    tweak(&p, &secrets)
    configure(&p, &secrets, upstream)
    let harness = try await BrokerHarness.start(
      providers: [p], secrets: [name: secrets], settings: settings, clock: clock, stateDir: stateDir)
    await harness.firstAttempts()
    return Single(upstream: upstream, harness: harness, name: name)
  }

  /// Runs `body` against a fresh broker and upstream, then checks that no secret or issued
  /// token reached a log line (a ``SetupError`` naming the lines when one did), and stops both.
  package static func with(
    _ dialect: FakeUpstream.Dialect, name: String = "p", grant: Grant? = nil, scopes: [String] = [],
    allowed: [String]? = nil, upstreamSettings: FakeUpstream.Settings = FakeUpstream.Settings(),
    settings: BrokerSettings = .testDefaults, clock: ManualClock = ManualClock(), stateDir: String? = nil,
    tweak: (inout ProviderConfig, inout ResolvedSecrets) -> Void = { _, _ in },
    configure: (inout ProviderConfig, inout ResolvedSecrets, FakeUpstream) -> Void = { _, _, _ in },
    _ body: (Single) async throws -> Void
  ) async throws {
    let s = try await start(
      dialect, name: name, grant: grant, scopes: scopes, allowed: allowed, upstreamSettings: upstreamSettings,
      settings: settings, clock: clock, stateDir: stateDir, tweak: tweak, configure: configure)
    do {
      try await body(s)
    } catch {
      await s.stop()
      throw error
    }
    let leaks = s.leaks()
    await s.stop()
    if !leaks.isEmpty { throw SetupError("a secret or token reached a log line (\(leaks.count) of them)") }
  }

  package var clock: ManualClock { harness.clock }

  package func status() async -> ProviderStatus { await harness.status(name)! }

  package func stop() async {
    await harness.shutdown()
    await upstream.stop()
  }

  /// Nothing secret in the logs so far.
  package func leaks() -> [String] { harness.leakedSecrets(upstreams: [upstream]) }
}

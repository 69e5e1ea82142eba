import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// One fake upstream and a broker with one provider against it.
struct Single {
  let upstream: FakeUpstream
  let harness: BrokerHarness
  let name: String

  static func start(
    _ dialect: FakeUpstream.Dialect, name: String = "p", grant: Grant? = nil, scopes: [String] = [],
    allowed: [String]? = nil, upstreamSettings: FakeUpstream.Settings = FakeUpstream.Settings(),
    settings: BrokerSettings = .testDefaults, clock: ManualClock = ManualClock(), stateDir: String? = nil,
    tweak: (inout ProviderConfig, inout ResolvedSecrets) -> Void = { _, _ in }
  ) async throws -> Single {
    let upstream = FakeUpstream(dialect, settings: upstreamSettings, now: { clock.now() })
    try await upstream.start()
    var (p, secrets) = SeedProviders.config(name, for: upstream, grant: grant, scopes: scopes)
    if let allowed { p.allowedScopes = allowed }
    tweak(&p, &secrets)
    let harness = try await BrokerHarness.start(
      providers: [p], secrets: [name: secrets], settings: settings, clock: clock, stateDir: stateDir)
    await harness.firstAttempts()
    return Single(upstream: upstream, harness: harness, name: name)
  }

  /// Runs `body` against a fresh broker and upstream, then checks that no
  /// secret or issued token reached a log line, and stops both.
  static func with(
    _ dialect: FakeUpstream.Dialect, name: String = "p", grant: Grant? = nil, scopes: [String] = [],
    allowed: [String]? = nil, upstreamSettings: FakeUpstream.Settings = FakeUpstream.Settings(),
    settings: BrokerSettings = .testDefaults, clock: ManualClock = ManualClock(), stateDir: String? = nil,
    tweak: (inout ProviderConfig, inout ResolvedSecrets) -> Void = { _, _ in },
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (Single) async throws -> Void
  ) async throws {
    let s = try await start(
      dialect, name: name, grant: grant, scopes: scopes, allowed: allowed, upstreamSettings: upstreamSettings,
      settings: settings, clock: clock, stateDir: stateDir, tweak: tweak)
    do {
      try await body(s)
    } catch {
      await s.stop()
      throw error
    }
    #expect(s.leaks().isEmpty, "a secret or token reached a log line", sourceLocation: sourceLocation)
    await s.stop()
  }

  var clock: ManualClock { harness.clock }

  func status() async -> ProviderStatus { await harness.status(name)! }

  func stop() async {
    await harness.shutdown()
    await upstream.stop()
  }

  /// Nothing secret in the logs so far.
  func leaks() -> [String] { harness.leakedSecrets(upstreams: [upstream]) }
}

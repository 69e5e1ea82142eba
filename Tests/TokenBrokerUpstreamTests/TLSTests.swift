import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Certificate verification is always on; a provider's `ca_file` is the only way to trust more.
@Suite struct TLSTests {
  static func run(caFile: Bool) async throws -> (ProviderStatus, [String]) {
    let cert = try await TestCertificate.make()
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, now: { clock.now() })
    try await upstream.start(tls: cert)
    var (p, secrets) = SeedProviders.config("tls", for: upstream)
    #expect(p.tokenURL.hasPrefix("https://127.0.0.1:"))
    if caFile { p.caFile = cert.certificatePath }
    let h = try await BrokerHarness.start(providers: [p], secrets: ["tls": secrets], clock: clock)
    await h.firstAttempts()
    let status = try #require(await h.status("tls"))
    let leaks = h.leakedSecrets(upstreams: [upstream])
    await h.shutdown()
    await upstream.stop()
    return (status, leaks)
  }

  @Test func anUntrustedCertificateIsRefused() async throws {
    let (status, leaks) = try await Self.run(caFile: false)
    #expect(status.state == .failed)
    #expect(status.lastError?.hasPrefix("TLS failure") == true, "\(status.lastError ?? "")")
    #expect(leaks.isEmpty)
  }

  @Test func caFileTrustsTheProvidersCertificate() async throws {
    let (status, leaks) = try await Self.run(caFile: true)
    #expect(status.state == .ok, "\(status.lastError ?? "")")
    #expect(leaks.isEmpty)
  }
}

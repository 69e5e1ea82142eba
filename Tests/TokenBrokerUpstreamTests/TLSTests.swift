import Testing
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// Certificate verification is always on; a provider's `ca_file` is the only way to trust more.
@Suite struct TLSTests {
  static func run(caFile: Bool, names: String = "IP:127.0.0.1", host: String = "127.0.0.1") async throws
    -> (ProviderStatus, [String])
  {
    let cert = try await TestCertificate.make(names: names)
    let clock = ManualClock()
    let upstream = FakeUpstream(.energy, now: { clock.now() })
    try await upstream.start(tls: cert)
    var (p, secrets) = SeedProviders.config("tls", for: upstream)
    #expect(p.tokenURL.hasPrefix("https://127.0.0.1:"))
    p.tokenURL = p.tokenURL.replacing("//127.0.0.1:", with: "//\(host):")
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

  /// A name in the URL is checked against the certificate's DNS names (and sent as SNI).
  @Test func aHostNameTheCertificateNamesIsTrusted() async throws {
    let (status, _) = try await Self.run(caFile: true, names: "DNS:localhost", host: "localhost")
    #expect(status.state == .ok, "\(status.lastError ?? "")")
  }

  @Test func aCertificateForAnotherNameIsRefused() async throws {
    let (status, leaks) = try await Self.run(caFile: true, names: "DNS:auth.example.com", host: "localhost")
    #expect(status.state == .failed)
    let error = status.lastError ?? ""
    #expect(error.hasPrefix("TLS failure with localhost:"), "\(error)")
    #expect(error.contains("failedToValidateHostname"), "\(error)")
    #expect(leaks.isEmpty)
  }

  /// An address in the URL is checked against the certificate's IP addresses.
  @Test func aCertificateForAnotherAddressIsRefused() async throws {
    let (status, _) = try await Self.run(caFile: true, names: "IP:127.0.0.2")
    #expect(status.state == .failed)
    #expect(status.lastError?.contains("failedToValidateHostname") == true, "\(status.lastError ?? "")")
  }
}

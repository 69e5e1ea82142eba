import Testing
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerTestSupport

/// One upstream fault of the measurement matrix, held until the test heals it.
struct MatrixFault: Sendable, CustomTestStringConvertible {
  enum Injection: Sendable {
    /// The fake upstream answers every request this way.
    case upstream(FakeUpstream.Fault)
    /// Requests go to a port nobody listens on.
    case closedPort
    /// Requests go to a name that does not resolve.
    case unknownHost
    /// Requests go to a TLS endpoint whose certificate is not trusted.
    case untrustedTLS
  }

  /// When the next attempt comes after a failure.
  enum Schedule: Sendable {
    /// Exponential backoff (jitter source 0.5): 1, 1, 2, 4, 8, 16 s…
    case backoff
    /// Never before the server's `Retry-After`.
    case retryAfter(Double)
    /// Rejected credentials or a wrong configuration: only at the 300 s cap.
    case cap
  }

  var name: String
  var injection: Injection
  /// Each expected in `last_error`.
  var phrases: [String]
  var schedule: Schedule
  var dialect: FakeUpstream.Dialect = .energy

  var testDescription: String { name }

  /// Whether `error` names this fault's cause.
  func isNamed(in error: String?) -> Bool {
    guard let error else { return false }
    return phrases.allSatisfy { error.contains($0) }
  }
}

/// The measurement matrix: each fault held against the real HTTP client and a
/// manual clock. The broker keeps answering, serves the valid token while it is
/// servable and never after, names the cause, and recovers within the backoff
/// cap once the upstream heals.
@Suite struct FaultMatrixTests {
  static let lifetime = 100.0
  static let minValid = 15.0
  static let cap = 300.0

  static let faults: [MatrixFault] = [
    MatrixFault(
      name: "connection refused", injection: .closedPort, phrases: ["onnection refused"], schedule: .backoff),
    MatrixFault(
      name: "unknown host", injection: .unknownHost, phrases: ["DNS error", "no-such-host.invalid"],
      schedule: .backoff),
    MatrixFault(
      name: "untrusted certificate", injection: .untrustedTLS,
      phrases: ["TLS failure", "CERTIFICATE_VERIFY_FAILED"], schedule: .backoff),
    MatrixFault(
      name: "stalled connection", injection: .upstream(.stall),
      phrases: ["no complete answer within request_timeout (1 s)"],
      schedule: .backoff),
    MatrixFault(
      name: "slow body", injection: .upstream(.slowBody(interval: 0.2)),
      phrases: ["no complete answer within request_timeout (1 s)"], schedule: .backoff),
    MatrixFault(
      name: "5xx", injection: .upstream(.status(502, body: "<html>bad gateway</html>")),
      phrases: ["upstream 502: upstream server error (502)"], schedule: .backoff),
    MatrixFault(
      name: "429 with Retry-After", injection: .upstream(.status(429, headers: ["Retry-After": "120"])),
      phrases: ["upstream 429: rate limited (429)"], schedule: .retryAfter(120)),
    MatrixFault(
      name: "503 with Retry-After", injection: .upstream(.status(503, headers: ["Retry-After": "120"])),
      phrases: ["upstream 503: upstream server error (503)"], schedule: .retryAfter(120)),
    MatrixFault(
      name: "malformed JSON", injection: .upstream(.malformedJSON),
      phrases: ["upstream 200", "not a JSON object"],
      schedule: .backoff),
    MatrixFault(
      name: "10 MB body", injection: .upstream(.oversized(10_000_000)),
      phrases: ["response body larger than 64 KiB"],
      schedule: .backoff),
    MatrixFault(
      name: "redirect to another host",
      injection: .upstream(.redirect(to: "https://elsewhere.example.com/token")),
      phrases: [
        "upstream 307", "redirects to https://elsewhere.example.com/token; redirects are not followed",
      ], schedule: .cap),
    MatrixFault(
      name: "invalid_grant", injection: .upstream(.invalidGrant), phrases: ["upstream 400 invalid_grant"],
      schedule: .cap,
      dialect: .formPassword),
    MatrixFault(
      name: "invalid_client", injection: .upstream(.invalidClient), phrases: ["upstream 401 invalid_client"],
      schedule: .cap),
  ]

  /// A broker with one provider `p` on `fault.dialect`, behind a switchable transport.
  struct Rig {
    let s: Single
    let transport: SwitchableTransport
    let tlsUpstream: FakeUpstream?

    func stop() async {
      await s.stop()
      await tlsUpstream?.stop()
    }
  }

  static func start(_ fault: MatrixFault) async throws -> Rig {
    let clock = ManualClock()
    var up = FakeUpstream.Settings()
    up.lifetime = Int(lifetime)
    let upstream = FakeUpstream(fault.dialect, settings: up, now: { clock.now() })
    try await upstream.start()
    var tlsUpstream: FakeUpstream?
    if case .untrustedTLS = fault.injection {
      let made = try await TestCertificate.make()
      let tls = FakeUpstream(fault.dialect, settings: up, now: { clock.now() })
      try await tls.start(tls: made)
      tlsUpstream = tls
    }
    var settings = BrokerSettings.testDefaults
    // 1 s where the fault is the deadline itself; elsewhere room for a TLS handshake or a
    // name lookup on a loaded 2-core machine, so the failure seen is the fault's own (the
    // HTTP client retries a failed connect until the deadline: each such attempt lasts it all).
    // 1 s where the fault is the deadline; elsewhere room for a loaded machine (a TLS
    // handshake under the whole suite), since nothing there waits for it.
    settings.requestTimeout = fault.phrases.contains { $0.contains("request_timeout") } ? 1 : 10
    settings.minValid = minValid
    let (p, secrets) = SeedProviders.config("p", for: upstream)
    let (harness, transport) = try await BrokerHarness.startSwitchable(
      providers: [p], secrets: ["p": secrets], settings: settings, clock: clock)
    await harness.firstAttempts()
    return Rig(
      s: Single(upstream: upstream, harness: harness, name: "p"), transport: transport,
      tlsUpstream: tlsUpstream)
  }

  static func inject(_ fault: MatrixFault, into rig: Rig) {
    switch fault.injection {
    case .upstream(let f): rig.s.upstream.failAlways(f)
    case .closedPort: rig.transport.divert(to: "http://127.0.0.1:1/token")
    case .unknownHost: rig.transport.divert(to: "https://no-such-host.invalid/token")
    case .untrustedTLS: rig.transport.divert(to: rig.tlsUpstream!.tokenURL)
    }
  }

  static func heal(_ rig: Rig) {
    rig.s.upstream.failAlways(nil)
    rig.transport.divert(to: nil)
  }

  /// The broker answers status (naming `fault` when given, else ok) and serves `token`.
  static func expectServed(
    _ s: Single, _ token: String, naming fault: MatrixFault?,
    sourceLocation: SourceLocation = #_sourceLocation
  ) async throws {
    try await expectStatusAnswers(s, naming: fault, sourceLocation: sourceLocation)
    let r = try await s.harness.get("/v1/token/p")
    #expect(r.status == 200, "at \(s.clock.now()): \(r.text)", sourceLocation: sourceLocation)
    #expect(r.json["access_token"] as? String == token, sourceLocation: sourceLocation)
  }

  /// The broker answers status and refuses the token with 503, never handing out `old`.
  static func expectRefused(
    _ s: Single, old: String, naming fault: MatrixFault, sourceLocation: SourceLocation = #_sourceLocation
  ) async throws {
    try await expectStatusAnswers(s, naming: fault, sourceLocation: sourceLocation)
    let r = try await s.harness.get("/v1/token/p")
    #expect(r.status == 503, "at \(s.clock.now()): \(r.text)", sourceLocation: sourceLocation)
    #expect(!r.text.contains(old), sourceLocation: sourceLocation)
    #expect(
      (r.json["error"] as? [String: Any])?["code"] as? String == "unavailable", sourceLocation: sourceLocation
    )
    #expect(
      r.headers["retry-after"].flatMap { Int($0) }.map { $0 >= 1 } == true, sourceLocation: sourceLocation)
  }

  static func expectStatusAnswers(
    _ s: Single, naming fault: MatrixFault?, sourceLocation: SourceLocation = #_sourceLocation
  ) async throws {
    let r = try await s.harness.get("/v1/status")
    #expect(r.status == 200, sourceLocation: sourceLocation)
    let p = (r.json["providers"] as? [[String: Any]])?.first
    if let fault {
      let error = p?["last_error"] as? String
      #expect(fault.isNamed(in: error), "\(error ?? "no last_error")", sourceLocation: sourceLocation)
    } else {
      #expect(p?["state"] as? String == "ok", sourceLocation: sourceLocation)
    }
  }

  @Test(arguments: faults)
  func brokerSurvivesServesOnlyWhileValidAndRecovers(_ fault: MatrixFault) async throws {
    let rig = try await Self.start(fault)
    do {
      try await Self.exercise(fault, rig)
    } catch {
      await rig.stop()
      throw error
    }
    #expect(rig.s.leaks().isEmpty, "a secret or token reached a log line: \(rig.s.leaks())")
    await rig.stop()
  }

  static func exercise(_ fault: MatrixFault, _ rig: Rig) async throws {
    let s = rig.s
    let clock = s.clock
    let t0 = clock.now()
    let old = try #require(s.upstream.issuedAccessTokens.last)
    #expect(await s.status().state == .ok)
    let expiry = t0 + lifetime
    let servableUntil = expiry - minValid
    inject(fault, into: rig)

    // The scheduled refresh (80 % of the lifetime) fails with the fault.
    #expect(await clock.advanceToNextTimer())
    #expect(clock.now() == t0 + 80)
    var status = await s.status()
    #expect(status.state == .degraded)
    #expect(status.failures == 1)
    #expect(fault.isNamed(in: status.lastError), "\(status.lastError ?? "no last_error")")
    let next = try #require(status.nextRefresh)
    switch fault.schedule {
    case .backoff: #expect(next == clock.now() + 1)
    case .retryAfter(let seconds): #expect(next >= clock.now() + seconds)
    case .cap: #expect(next == clock.now() + cap)
    }
    if fault.dialect == .formPassword {
      // The refresh token was refused, and so was the fallback to the password grant.
      #expect(s.upstream.requests.map { $0.form["grant_type"] } == ["password", "refresh_token", "password"])
    }
    try await expectServed(s, old, naming: fault)

    // Every further attempt while the token is servable: still the same token.
    while let due = clock.pendingDeadlines.first, due <= servableUntil {
      await clock.advance(by: due - clock.now())
      try await expectServed(s, old, naming: fault)
    }
    await clock.advance(by: servableUntil - clock.now())
    try await expectServed(s, old, naming: fault)

    // Past expiry minus min_valid, and past expiry itself: 503, never the old token, and the
    // status says so (a token that cannot be served is not `degraded`).
    await clock.advance(by: 0.5)
    try await expectRefused(s, old: old, naming: fault)
    #expect(await s.status().state == .failed)
    await clock.advance(by: expiry + 1 - clock.now())
    try await expectRefused(s, old: old, naming: fault)
    status = await s.status()
    #expect(status.state == .failed)
    #expect(fault.isNamed(in: status.lastError), "\(status.lastError ?? "no last_error")")

    // Healed: the next scheduled attempt recovers, within the backoff cap.
    let healedAt = clock.now()
    heal(rig)
    var rounds = 0
    while await s.status().state != .ok, rounds < 5 {
      #expect(await clock.advanceToNextTimer())
      rounds += 1
    }
    status = await s.status()
    #expect(status.state == .ok, "\(status.lastError ?? "")")
    #expect(status.lastError == nil)
    #expect(status.failures == 0)
    #expect(clock.now() - healedAt <= cap)
    let fresh = try #require(s.upstream.issuedAccessTokens.last)
    #expect(fresh != old)
    try await expectServed(s, fresh, naming: nil)

    // The schedule between attempts, from the first failure to the recovery.
    var times: [Double] = []
    for a in rig.transport.attempts where a.at >= t0 + 80 && times.last != a.at { times.append(a.at) }
    let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
    #expect(!gaps.isEmpty)
    #expect(gaps.allSatisfy { $0 >= 1 && $0 <= cap }, "\(gaps)")
    switch fault.schedule {
    case .backoff: #expect(gaps == Array([1, 1, 2, 4, 8, 16, 32].prefix(gaps.count)), "\(gaps)")
    case .retryAfter(let seconds): #expect(gaps.allSatisfy { $0 >= seconds }, "\(gaps)")
    case .cap: #expect(gaps.allSatisfy { $0 == cap }, "\(gaps)")
    }
    // Every request that was not diverted reached the fake upstream, once.
    #expect(s.upstream.requestCount == rig.transport.attempts.filter { !$0.diverted }.count)
    #expect(s.leaks().isEmpty)
  }
}

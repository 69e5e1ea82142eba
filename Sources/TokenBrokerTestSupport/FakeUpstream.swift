import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTP token endpoint on 127.0.0.1 that speaks one seed provider's
/// dialect exactly (anything else gets 400) and misbehaves on command.
package final class FakeUpstream: Sendable {
  package enum Dialect: String, Sendable, CaseIterable {
    /// Seed 001: `POST /oauth/v2/token`, HTTP Basic, form `grant_type=client_credentials`.
    case energy
    /// Seed 000: `POST /auth/token`, JSON body; password, client_credentials (secret in body),
    /// refresh_token grants; nested `{"error":{"code","message"}}` errors; rotating `rt_` tokens.
    case powerverse
    /// Seed 002: `POST /v1/auth/token`, HTTP Basic and an empty body, no grant_type.
    case powernaut
    /// Seed 003: `POST /auth/oauth/token`, JSON password grant with space-separated scope;
    /// lowercase `bearer`, `created_at`, `expires_in` 7200.
    case placeos
    /// RFC 6749 password grant with a form body and Basic client auth.
    case formPassword

    package var path: String {
      switch self {
      case .energy: return "/oauth/v2/token"
      case .powerverse: return "/auth/token"
      case .powernaut: return "/v1/auth/token"
      case .placeos: return "/auth/oauth/token"
      case .formPassword: return "/oauth/token"
      }
    }
  }

  /// Ways to misbehave, queued with `failNext` or set with `failAlways`.
  package enum Fault: Sendable, Equatable {
    case status(Int, body: String = "", headers: [String: String] = [:])
    /// Accept the request and never answer.
    case stall
    /// Send the head, then one body byte every `interval` seconds.
    case slowBody(interval: Double)
    /// A 200 whose body is this many bytes.
    case oversized(Int)
    case malformedJSON
    case redirect(to: String)
    case invalidGrant
    case invalidClient
    /// Answer normally, but only after this many (real) seconds.
    case delayed(Double)
  }

  package struct Recorded: Sendable {
    package var method: String
    package var path: String
    package var headers: [String: String]
    package var body: String
    package var json: [String: String] {
      guard let o = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
        return [:]
      }
      return o.compactMapValues { $0 as? String }
    }
    package var form: [String: String] {
      var out: [String: String] = [:]
      for pair in body.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1).map {
          String($0).removingPercentEncoding ?? String($0)
        }
        out[kv[0]] = kv.count > 1 ? kv[1] : ""
      }
      return out
    }
  }

  package struct Settings: Sendable {
    package var clientID = "client-1"
    package var clientSecret = "s3cret-client"
    package var username = "operator@example.com"
    package var password = "pa55word"
    /// Seconds; tokens say `expires_in` this.
    package var lifetime: Int = 3600
    /// Issue a new refresh token with every grant and invalidate the old one.
    package var rotateRefreshTokens = true
    /// Reusing a rotated-out refresh token revokes the whole family (`invalid_grant`).
    package var reuseDetection = true
    /// `expires_in` as a string (`"3600"`).
    package var expiresInAsString = false
    /// No `expires_in`: only the JWT `exp` claim says when the token expires.
    package var jwtExpiryOnly = false
    /// The login side: authorization decision, code and device lifetimes, token format,
    /// revocation failures (see FakeUpstream+Login.swift).
    package var login = LoginSettings()
    package init() {}
  }

  struct State {
    var settings: Settings
    var faults: [Fault] = []
    var persistentFault: Fault?
    var requests: [Recorded] = []
    var issuedAccess: [String] = []
    var issuedRefresh: [String] = []
    var validRefresh: Set<String> = []
    var revokedRefresh: Set<String> = []
    var counter = 0
    var login = LoginState()
  }

  package let dialect: Dialect
  let state: NIOLockedValueBox<State>
  let now: @Sendable () -> Double
  private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

  package init(_ dialect: Dialect, settings: Settings = Settings(), now: @escaping @Sendable () -> Double) {
    self.dialect = dialect
    self.state = NIOLockedValueBox(State(settings: settings))
    self.now = now
  }

  /// Binds 127.0.0.1 on a free port; with `tls`, speaks HTTPS with that certificate.
  package func start(
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, tls: TestCertificate? = nil
  ) async throws {
    let sslContext = try tls.map { cert in
      try NIOSSLContext(
        configuration: .makeServerConfiguration(
          certificateChain: try NIOSSLCertificate.fromPEMFile(cert.certificatePath).map { .certificate($0) },
          privateKey: .privateKey(try NIOSSLPrivateKey(file: cert.keyPath, format: .pem))))
    }
    scheme.withLockedValue { $0 = tls == nil ? "http" : "https" }
    let ch = try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let sslContext {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
          }
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(FakeUpstreamHandler(upstream: self))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    channel.withLockedValue { $0 = ch }
  }

  package func stop() async {
    let ch = channel.withLockedValue { $0 }
    try? await ch?.close()
  }

  package var port: Int { channel.withLockedValue { $0?.localAddress?.port ?? 0 } }
  package var tokenURL: String { "\(scheme.withLockedValue { $0 })://127.0.0.1:\(port)\(dialect.path)" }
  let scheme = NIOLockedValueBox("http")

  // MARK: Control and inspection

  package func failNext(_ fault: Fault, times: Int = 1) {
    state.withLockedValue { $0.faults += Array(repeating: fault, count: times) }
  }

  package func failAlways(_ fault: Fault?) {
    state.withLockedValue { $0.persistentFault = fault }
  }

  package func update(_ change: @Sendable (inout Settings) -> Void) {
    state.withLockedValue { change(&$0.settings) }
  }

  package var requests: [Recorded] { state.withLockedValue { $0.requests } }
  package var requestCount: Int { state.withLockedValue { $0.requests.count } }
  package var issuedAccessTokens: [String] { state.withLockedValue { $0.issuedAccess } }
  package var issuedRefreshTokens: [String] { state.withLockedValue { $0.issuedRefresh } }
  package var settings: Settings { state.withLockedValue { $0.settings } }

  /// Registers a refresh token as valid (the "first refresh token" an operator configures).
  package func seedRefreshToken(_ token: String) {
    state.withLockedValue {
      $0.validRefresh.insert(token)
      $0.issuedRefresh.append(token)
    }
  }

  /// Whether the grant family was revoked by reuse detection.
  package var familyRevoked: Bool {
    state.withLockedValue { !$0.revokedRefresh.isEmpty && $0.validRefresh.isEmpty }
  }

  func nextFault() -> Fault? {
    state.withLockedValue { s in s.faults.isEmpty ? s.persistentFault : s.faults.removeFirst() }
  }

  func record(_ r: Recorded) { state.withLockedValue { $0.requests.append(r) } }
}

import TokenBrokerCore

/// A provider's login as `GET /v1/providers/NAME/login` shows it. Never holds a code, a
/// verifier, a state or a device code.
package struct LoginView: Sendable, Equatable {
  package var provider: String
  package var status: LoginStateMachine.Status
  /// `browser`, `device`: what the provider's configuration allows.
  package var methods: [String]
  package var redirectURI: String
  package var method: String?
  package var expiresIn: Int?
  package var verificationURI: String?
  package var verificationURIComplete: String?
  package var userCode: String?
  package var interval: Int?
  package var message: String?
  /// The redirect URI of the login in progress (with the port tokenctl listens on).
  package var loginRedirectURI: String?

  init(
    provider: String, status: LoginStateMachine.Status, methods: [String], redirectURI: String,
    login: LoginStateMachine.Login?, now: Double
  ) {
    self.provider = provider
    self.status = status
    self.methods = methods
    self.redirectURI = redirectURI
    guard let login else { return }
    method = login.method.rawValue
    loginRedirectURI = login.redirectURI
    message = status == .expired ? (login.message ?? "the login expired; start a new one") : login.message
    if status == .pending || status == .exchanging {
      expiresIn = max(0, Int((login.expiresAt - now).rounded(.down)))
      if let device = login.device {
        verificationURI = device.verificationURI
        verificationURIComplete = device.verificationURIComplete
        userCode = device.userCode
        interval = Int(login.interval)
      }
    }
  }

  package func json() -> [UInt8] {
    var w = JSONWriter.Object()
    w.field("provider", provider)
    w.field("status", status.rawValue)
    w.raw("methods", JSONWriter.array(methods.map { JSONWriter.encode(.string($0)) }))
    w.field("redirect_uri", redirectURI)
    if let method { w.field("method", method) }
    if let expiresIn { w.field("expires_in", expiresIn) }
    if let verificationURI { w.field("verification_uri", verificationURI) }
    if let verificationURIComplete { w.field("verification_uri_complete", verificationURIComplete) }
    if let userCode { w.field("user_code", userCode) }
    if let interval { w.field("interval", interval) }
    if let message { w.field("message", message) }
    return w.finished()
  }
}

/// What a token says (`GET /v1/token/NAME/info`), never the token itself.
package enum TokenInfo: Sendable, Equatable {
  /// A JWT's header and claims; the signature is dropped.
  case jwt(header: JSONValue, claims: JSONValue)
  /// An opaque token: the introspection answer, or why there is none.
  case opaque(JSONValue?, message: String?)

  package func json(provider: String) -> [UInt8] {
    var w = JSONWriter.Object()
    w.field("provider", provider)
    switch self {
    case .jwt(let header, let claims):
      w.field("format", "jwt")
      w.raw("header", JSONWriter.encode(header))
      w.raw("claims", JSONWriter.encode(claims))
    case .opaque(let introspection, let message):
      w.field("format", "opaque")
      if let introspection { w.raw("introspection", JSONWriter.encode(introspection)) }
      if let message { w.field("message", message) }
    }
    return w.finished()
  }

  /// `value` with every string that is (or holds) one of `secrets` replaced: an
  /// introspection answer or a claim never echoes the token or the refresh token.
  static func scrub(_ value: JSONValue, secrets: [String]) -> JSONValue {
    switch value {
    case .string(let s):
      return secrets.contains { !$0.isEmpty && s.contains($0) } ? .string("[redacted]") : value
    case .array(let a): return .array(a.map { scrub($0, secrets: secrets) })
    case .object(let members): return .object(members.map { ($0.0, scrub($0.1, secrets: secrets)) })
    default: return value
    }
  }
}

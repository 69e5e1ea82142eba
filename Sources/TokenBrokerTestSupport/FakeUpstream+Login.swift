import Foundation
import TokenBrokerCore

/// The login side of the fake upstream: what a test sets (``FakeUpstream/LoginSettings``,
/// the device script), what it reads back (recorded requests, polls, revocations), the
/// endpoints' URLs, and the client authentication and request parsing they share.
///
/// Endpoints beside the token endpoint (`{base}` is the token path without its last
/// component, e.g. `/auth` for Powerverse, `/auth/oauth` for PlaceOS):
/// - `GET {base}/authorize`: the authorization endpoint (FakeUpstream+Authorization.swift)
/// - `POST {base}/device`: the device authorization endpoint (FakeUpstream+Device.swift)
/// - `POST {base}/revoke`, `POST {base}/introspect`, `GET {base}/inspect` and PlaceOS's
///   `GET /api/engine/v2/api_keys/inspect` (FakeUpstream+Revocation.swift)
///
/// These endpoints do not take the token endpoint's queued faults (`failNext`): the
/// revocation endpoint has its own switch, ``LoginSettings/revocationFault``.
extension FakeUpstream {
  /// What the user at the authorization server's consent page does.
  package enum AuthorizationDecision: Sendable, Equatable {
    /// Redirect with `code` and `state`.
    case approve
    /// Redirect with `error=access_denied`, this `error_description` and `state`.
    case deny(description: String = "The resource owner denied the request")
    /// Redirect with another RFC 6749 4.1.2.1 error code (e.g. `invalid_scope`).
    case error(String, description: String)
  }

  /// One answer of the device_code grant (RFC 8628 3.5), taken in order from the script.
  package enum DeviceAnswer: Sendable, Equatable {
    /// 400 `authorization_pending`
    case pending
    /// 400 `slow_down`
    case slowDown
    /// 400 `access_denied`; the device code is dead afterwards
    case deny
    /// 400 `expired_token`; the device code is dead afterwards
    case expire
    /// 200 with tokens of a new family; the device code is used up afterwards
    case approve
  }

  /// The access tokens the fake issues.
  package enum AccessTokenFormat: Sendable, Equatable {
    /// As before the login endpoints: a JWT with `sub` and `exp` only for Powerverse and
    /// Powernaut (and with `jwtExpiryOnly`), opaque `at_…` strings otherwise.
    case dialect
    /// Opaque `at_…` strings in every dialect (a minimal JWT only with `jwtExpiryOnly`).
    case opaque
    /// JWTs with header `alg`, `kid`, `typ` and claims `iss`, `sub`, `aud`, `exp`, `iat`,
    /// `scope`, `client_id`, `jti`; the signature is arbitrary base64url bytes.
    case jwt
  }

  package struct LoginSettings: Sendable {
    /// The answer of the authorization endpoint to every request.
    package var authorization: AuthorizationDecision = .approve
    /// Seconds an authorization code can be exchanged after it was issued.
    package var codeLifetime: Double = 600
    /// Authorization requests without `code_challenge` and `code_challenge_method=S256` are
    /// answered `error=invalid_request`.
    package var requirePKCE = true
    /// `expires_in` and `interval` of a device authorization.
    package var deviceLifetime = 600
    package var deviceInterval = 5
    /// A poll sooner than `interval` after the previous one is answered `slow_down` and adds
    /// 5 s to the interval (RFC 8628 3.5), before the script is asked.
    package var enforceDeviceInterval = false
    package var accessTokenFormat: AccessTokenFormat = .dialect
    /// A public client: the code and device grants, revocation and introspection accept the
    /// `client_id` alone (`client_auth = "none"`).
    package var publicClient = false
    /// Claims of JWT access tokens and introspection answers.
    package var subject = "opr_abc123"
    package var audience = "https://platform.example"
    package var keyID = "fake-key-1"
    /// `iss` of JWT access tokens; nil: the fake's own origin (`http://127.0.0.1:PORT`).
    package var issuer: String?
    /// When set, every revocation request is answered with this fault (e.g. `.status(503)`).
    package var revocationFault: Fault?
    package init() {}
  }

  /// One request at the authorization endpoint, as the browser sent it.
  package struct AuthorizationRequest: Sendable, Equatable {
    package var responseType: String?
    package var clientID: String?
    package var redirectURI: String?
    package var scope: String?
    package var state: String?
    package var codeChallenge: String?
    package var codeChallengeMethod: String?
    package var nonce: String?
    /// Every other query parameter (e.g. `prompt` from `authorize_params`).
    package var extra: [String: String]
  }

  /// One request at the device authorization endpoint.
  package struct DeviceAuthorizationRequest: Sendable, Equatable {
    package var clientID: String?
    package var scope: String?
    /// The answer's codes.
    package var deviceCode: String
    package var userCode: String
  }

  /// One request at the revocation endpoint that passed client authentication.
  package struct RevocationRequest: Sendable, Equatable {
    package var token: String
    package var tokenTypeHint: String?
    /// Whether the fake had issued (or been seeded with) that token.
    package var known: Bool

    package init(token: String, tokenTypeHint: String?, known: Bool) {
      self.token = token
      self.tokenTypeHint = tokenTypeHint
      self.known = known
    }
  }

  struct IssuedToken {
    enum Kind { case access, refresh }
    var kind: Kind
    var family: Int
    var scope: String?
    var issuedAt: Double
    /// nil: a refresh token, valid while in `validRefresh`.
    var expiresAt: Double?
  }

  struct IssuedCode {
    var request: AuthorizationRequest
    var issuedAt: Double
    /// The family issued from this code, once exchanged.
    var family: Int?
  }

  struct DeviceGrant {
    var request: DeviceAuthorizationRequest
    var issuedAt: Double
    var expiresIn: Int
    var interval: Int
    var lastPoll: Double?
    /// Denied, expired by the script, or approved: later polls get `invalid_grant`.
    var finished: DeviceAnswer?
  }

  struct LoginState {
    var authorizationRequests: [AuthorizationRequest] = []
    var codes: [String: IssuedCode] = [:]
    var deviceRequests: [DeviceAuthorizationRequest] = []
    var deviceGrants: [String: DeviceGrant] = [:]
    var deviceScript: [DeviceAnswer] = [.approve]
    var devicePolls: [Double] = []
    var tokens: [String: IssuedToken] = [:]
    var familyScope: [Int: String] = [:]
    var nextFamily = 0
    /// Tokens made inactive by revocation (RFC 7009) or by a reused authorization code.
    var revoked: Set<String> = []
    var revocations: [RevocationRequest] = []

    mutating func newFamily(scope: String?) -> Int {
      nextFamily += 1
      if let scope { familyScope[nextFamily] = scope }
      return nextFamily
    }

    /// The family of a valid refresh token; a seeded one gets a family of its own here.
    mutating func registerRefresh(_ token: String, now: Double) -> Int {
      if let known = tokens[token] { return known.family }
      let family = newFamily(scope: nil)
      tokens[token] = IssuedToken(kind: .refresh, family: family, scope: nil, issuedAt: now, expiresAt: nil)
      return family
    }
  }

  // MARK: URLs

  /// `http://127.0.0.1:PORT` (https with TLS).
  package var origin: String { "\(scheme.withLockedValue { $0 })://127.0.0.1:\(port)" }
  package var authorizeURL: String { origin + dialect.authorizePath }
  package var deviceURL: String { origin + dialect.devicePath }
  package var revokeURL: String { origin + dialect.revokePath }
  package var introspectURL: String { origin + dialect.introspectPath }
  package var inspectURL: String { origin + dialect.inspectPath }

  var issuer: String { settings.login.issuer ?? origin }

  // MARK: Control

  /// Sets what the authorization endpoint answers from now on.
  package func decideAuthorizations(_ decision: AuthorizationDecision) {
    update { $0.login.authorization = decision }
  }

  /// Replaces the device grant's script: one answer per poll, in order; once it is used up
  /// every poll is `.pending` (the user has not acted). The default script is `[.approve]`.
  package func scriptDevicePolls(_ answers: [DeviceAnswer]) {
    state.withLockedValue { $0.login.deviceScript = answers }
  }

  /// Makes every revocation request fail with `fault` (nil: answer normally again).
  package func failRevocation(_ fault: Fault?) {
    update { $0.login.revocationFault = fault }
  }

  /// Ages every authorization code past its lifetime (as if the user took too long).
  package func expireAuthorizationCodes() {
    let lifetime = settings.login.codeLifetime
    state.withLockedValue { s in
      for key in s.login.codes.keys { s.login.codes[key]!.issuedAt -= lifetime + 1 }
    }
  }

  // MARK: Observation

  package var authorizationRequests: [AuthorizationRequest] {
    state.withLockedValue { $0.login.authorizationRequests }
  }

  /// Authorization codes issued, in order (used or not).
  package var issuedAuthorizationCodes: [String] {
    state.withLockedValue { s in s.login.codes.sorted { $0.value.issuedAt < $1.value.issuedAt }.map(\.key) }
  }

  package var deviceAuthorizationRequests: [DeviceAuthorizationRequest] {
    state.withLockedValue { $0.login.deviceRequests }
  }

  /// The device grant polls received, by the fake's clock (`now`).
  package var devicePollTimes: [Double] { state.withLockedValue { $0.login.devicePolls } }
  package var devicePollCount: Int { devicePollTimes.count }

  /// Revocation requests that passed client authentication, in order.
  package var revocationRequests: [RevocationRequest] { state.withLockedValue { $0.login.revocations } }

  /// Tokens revoked (a refresh token's whole family and the access tokens issued from it).
  package var revokedTokens: Set<String> { state.withLockedValue { $0.login.revoked } }

  /// Whether `token` is one the fake issued that is still good: not revoked, rotated out or
  /// expired (what introspection answers).
  package func isActive(_ token: String) -> Bool { activeToken(token) != nil }

  /// The query fields of a URL (e.g. the redirect a browser was sent to), percent-decoded.
  package static func splitQuery(_ url: String) -> [String: String] { splitTarget(url).query }

  /// The PKCE S256 challenge of `verifier` (RFC 7636 4.2).
  package static func pkceChallenge(_ verifier: String) -> String {
    base64URL(SHA256.hash(verifier.utf8))
  }

  // MARK: Shared by the endpoints

  func activeToken(_ token: String) -> IssuedToken? {
    let now = self.now()
    return state.withLockedValue { s -> IssuedToken? in
      guard let t = s.login.tokens[token], !s.login.revoked.contains(token) else { return nil }
      switch t.kind {
      case .access: return now < (t.expiresAt ?? .infinity) ? t : nil
      case .refresh: return s.validRefresh.contains(token) ? t : nil
      }
    }
  }

  /// The request's parameters: a JSON object's string members or a form's fields, by its
  /// media type; nil for anything else.
  func parameters(_ r: Recorded) -> [String: String]? {
    let media = r.headers["content-type"]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
    switch media?.lowercased() {
    case "application/json": return r.json
    case "application/x-www-form-urlencoded": return r.form
    default: return nil
    }
  }

  /// Client authentication as each dialect does it; nil when the client is authenticated,
  /// else the failure's answer (401).
  /// - Powerverse: `client_id` and `client_secret` in the body (JSON or form:
  ///   client_secret_post), never an Authorization header.
  /// - PlaceOS: `client_id` in the JSON body; a `client_secret`, when sent, must match (its
  ///   templates are public PKCE clients).
  /// - the others: HTTP Basic.
  /// With ``LoginSettings/publicClient`` the `client_id` alone in the body is enough.
  func clientAuthenticationFailure(_ r: Recorded, _ p: [String: String]) -> FakeAnswer? {
    let s = settings
    let basic = "Basic " + Data("\(s.clientID):\(s.clientSecret)".utf8).base64EncodedString()
    let publicOK = s.login.publicClient && r.headers["authorization"] == nil && p["client_secret"] == nil
    let ok: Bool
    switch dialect {
    case .powerverse:
      ok =
        r.headers["authorization"] == nil && p["client_id"] == s.clientID
        && (p["client_secret"] == s.clientSecret || publicOK)
    case .placeos:
      ok =
        r.headers["authorization"] == nil && p["client_id"] == s.clientID
        && (p["client_secret"] == nil || p["client_secret"] == s.clientSecret)
    case .energy, .powernaut, .formPassword:
      ok =
        (r.headers["authorization"] == basic && p["client_secret"] == nil)
        || (publicOK && p["client_id"] == s.clientID)
    }
    if ok { return nil }
    return error(
      401, code: dialect == .powerverse ? "UNAUTHORIZED" : "invalid_client",
      message: "Client authentication failed")
  }

  /// The answer of a login endpoint, or nil when `r` is for the token endpoint (or nothing).
  func loginEndpointAnswer(_ r: Recorded) -> FakeAnswer? {
    let (path, query) = Self.splitTarget(r.path)
    switch path {
    case dialect.authorizePath:
      return r.method == "GET" ? authorize(query: query) : methodNotAllowed("GET")
    case dialect.devicePath:
      return r.method == "POST" ? deviceAuthorization(r) : methodNotAllowed("POST")
    case dialect.revokePath:
      return r.method == "POST" ? revoke(r) : methodNotAllowed("POST")
    case dialect.introspectPath:
      return r.method == "POST" ? introspect(r) : methodNotAllowed("POST")
    case dialect.inspectPath, dialect.base + "/inspect":
      return r.method == "GET" ? inspect(query: query) : methodNotAllowed("GET")
    default:
      return nil
    }
  }

  /// The new grants at the token endpoint (authorization_code, device_code; and Powerverse's
  /// form-encoded refresh_token grant of its OAuth endpoints), or nil for the existing ones.
  func loginGrantAnswer(_ r: Recorded) -> FakeAnswer? {
    guard let p = parameters(r) else { return nil }
    let grant = p["grant_type"]
    let isForm = r.headers["content-type"]?.hasPrefix("application/x-www-form-urlencoded") == true
    let powerverseFormRefresh = dialect == .powerverse && isForm && grant == "refresh_token"
    guard grant == "authorization_code" || grant == Self.deviceGrantType || powerverseFormRefresh else {
      return nil
    }
    switch dialect {
    case .energy, .powernaut:
      return wrongDialect("its own grant only")
    case .placeos where isForm:
      return wrongDialect("a JSON body")
    case .formPassword where !isForm:
      return wrongDialect("form body")
    default:
      break
    }
    if let failure = clientAuthenticationFailure(r, p) { return failure }
    switch grant {
    case "authorization_code": return exchangeCode(p)
    case Self.deviceGrantType: return pollDevice(p)
    default: return refresh(p["refresh_token"] ?? "", scope: p["scope"])
    }
  }

  static let deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

  func methodNotAllowed(_ allowed: String) -> FakeAnswer {
    .respond(status: 405, headers: ["Allow": allowed], body: [])
  }

  func json(_ status: Int, _ object: [String: Any], headers: [String: String] = [:]) -> FakeAnswer {
    let body = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return .respond(
      status: status, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a },
      body: Array(body))
  }

  static func splitTarget(_ target: String) -> (path: String, query: [String: String]) {
    guard let q = target.firstIndex(of: "?") else { return (target, [:]) }
    return (String(target[..<q]), formDecode(String(target[target.index(after: q)...])))
  }

  /// `application/x-www-form-urlencoded` fields (`+` is a space), the last of a repeated name.
  static func formDecode(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for pair in text.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1).map {
        let plus = String($0).replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
      }
      out[kv[0]] = kv.count > 1 ? kv[1] : ""
    }
    return out
  }

  static func formEncode(_ fields: [(String, String)]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return fields.map {
      "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)"
    }.joined(separator: "&")
  }

  static func base64URL(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
      .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
  }

  /// A JWT access token (RFC 9068 shape); the signature is not one.
  static func accessJWT(issuer: String, settings s: Settings, scope: String?, iat: Int, exp: Int, n: Int)
    -> String
  {
    func part(_ object: [String: Any]) -> String {
      base64URL(Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
    }
    var claims: [String: Any] = [
      "iss": issuer, "sub": s.login.subject, "aud": s.login.audience, "exp": exp, "iat": iat,
      "client_id": s.clientID, "jti": "jti-\(n)",
    ]
    if let scope { claims["scope"] = scope }
    return part(["alg": "RS256", "kid": s.login.keyID, "typ": "at+jwt"]) + "." + part(claims) + "."
      + base64URL(Array("fake-signature-\(n)".utf8))
  }
}

extension FakeUpstream.Dialect {
  /// The token path without its last component.
  package var base: String { String(path[..<path.lastIndex(of: "/")!]) }
  package var authorizePath: String { base + "/authorize" }
  package var devicePath: String { base + "/device" }
  package var revokePath: String { base + "/revoke" }
  package var introspectPath: String { base + "/introspect" }
  /// PlaceOS's own inspection path (seed 003); `{base}/inspect` for the others (PlaceOS
  /// answers there too).
  package var inspectPath: String {
    self == .placeos ? "/api/engine/v2/api_keys/inspect" : base + "/inspect"
  }
}

extension TrackedUpstreamServer {
  package var origin: String { "http://127.0.0.1:\(port)" }
  package var authorizeURL: String { origin + upstream.dialect.authorizePath }
  package var deviceURL: String { origin + upstream.dialect.devicePath }
  package var revokeURL: String { origin + upstream.dialect.revokePath }
  package var introspectURL: String { origin + upstream.dialect.introspectPath }
  package var inspectURL: String { origin + upstream.dialect.inspectPath }
}

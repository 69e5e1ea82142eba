import Logging
import NIOConcurrencyHelpers
import NIOHTTP1
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer

/// The socket API of README "The socket API". Cached tokens are answered on the event
/// loop (`respondImmediately`); everything else goes through the engines.
package final class SocketAPI: ServerRequestHandler {
  let broker: Broker
  let logger: Logger
  /// Called for `POST /v1/reload`; returns the problems when the new config is refused.
  let reload: @Sendable () async -> [String]?
  /// The metrics of a cached token answered on the fast path (always a 200).
  let cachedTokenServed: BrokerMetrics.RequestRecorder
  /// Which refusals are logged (at most one line per uid per window).
  let refusals = NIOLockedValueBox(RefusalThrottle())

  package init(broker: Broker, logger: Logger, reload: @escaping @Sendable () async -> [String]? = { nil }) {
    self.broker = broker
    self.logger = logger
    self.reload = reload
    cachedTokenServed = broker.environment.metrics.recorder(endpoint: "token", status: 200)
  }

  enum Route {
    case token(String)
    case status
    case refresh(String)
    case reload
    case metrics
    case tokenInfo(String)
    case login(String)
    case loginComplete(String)
    case logout(String)

    var endpoint: String {
      switch self {
      case .tokenInfo: return "token_info"
      case .login: return "login"
      case .loginComplete: return "login_complete"
      case .logout: return "logout"
      case .token: return "token"
      case .status: return "status"
      case .refresh: return "refresh"
      case .reload: return "reload"
      case .metrics: return "metrics"
      }
    }
  }

  /// The route of `path`, compared as bytes (the fast path runs this per request).
  static func route(_ path: Substring) -> Route? {
    if let routed = path.utf8.withContiguousStorageIfAvailable({ route(bytes: $0[...]) }) { return routed }
    return Array(path.utf8).withUnsafeBufferPointer { route(bytes: $0[...]) }
  }

  private static func route(bytes: PathBytes) -> Route? {
    if let name = bytes.dropPrefix("/v1/token/") {
      if let info = name.dropSuffix("/info") { return info.segment.map(Route.tokenInfo) }
      return name.segment.map(Route.token)
    }
    if bytes.equals("/v1/status") { return .status }
    if bytes.equals("/v1/reload") { return .reload }
    if bytes.equals("/metrics") { return .metrics }
    if let rest = bytes.dropPrefix("/v1/providers/") {
      if let name = rest.dropSuffix("/refresh") { return name.segment.map(Route.refresh) }
      if let name = rest.dropSuffix("/login/complete") { return name.segment.map(Route.loginComplete) }
      if let name = rest.dropSuffix("/login") { return name.segment.map(Route.login) }
      if let name = rest.dropSuffix("/logout") { return name.segment.map(Route.logout) }
    }
    return nil
  }

  package func respondImmediately(to request: ServerRequest) -> ServerResponse? {
    let start = ContinuousClock.now
    guard let response = cachedToken(request) else { return nil }
    cachedTokenServed.record(nanoseconds: Self.nanoseconds(since: start))
    return response
  }

  package func handle(_ request: ServerRequest) async -> ServerResponse {
    let start = ContinuousClock.now
    let route = Self.route(request.path)
    let response = await answer(request, route: route)
    record(route?.endpoint ?? "other", response, since: start)
    return response
  }

  private func record(_ endpoint: String, _ response: ServerResponse, since start: ContinuousClock.Instant) {
    broker.environment.metrics.request(
      endpoint: endpoint, status: Int(response.status.code), nanoseconds: Self.nanoseconds(since: start))
  }

  static func nanoseconds(since start: ContinuousClock.Instant) -> Int64 {
    let elapsed = (ContinuousClock.now - start).components
    return elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000
  }

  func cachedToken(_ request: ServerRequest) -> ServerResponse? {
    guard request.method == .GET, !request.queryMalformed, case .token(let name)? = Self.route(request.path)
    else { return nil }
    let peer = request.peer
    let view = broker.servingView(
      provider: name, uid: peer?.uid, gid: peer?.gid ?? 0, groups: peer?.groups ?? [])
    guard let provider = view.provider, view.mayUse,
      let parsed = try? parseTokenRequest(request, provider: provider)
    else {
      return nil
    }
    let now = broker.environment.clock.now()
    let minValid = max(provider.minValid, parsed.minValid ?? 0)
    guard
      let answer = broker.environment.cache.servable(
        provider: name, scopes: parsed.scopes, now: now, minValid: minValid)
    else { return nil }
    return answerResponse(answer, plain: parsed.plain, now: now)
  }

  func answer(_ request: ServerRequest, route: Route?) async -> ServerResponse {
    if request.queryMalformed {
      return error(.badRequest, "bad_request", "the query has a malformed %-escape or is not UTF-8")
    }
    guard let route else {
      return error(.notFound, "not_found", "no such endpoint: \(request.path); see GET /v1/status")
    }
    switch route {
    case .token(let name):
      guard request.method == .GET else { return methodNotAllowed("GET") }
      return await serveToken(request, provider: name)
    case .status:
      guard request.method == .GET else { return methodNotAllowed("GET") }
      return await status(request)
    case .refresh(let name):
      guard request.method == .POST else { return methodNotAllowed("POST") }
      return await refresh(request, provider: name)
    case .reload:
      guard request.method == .POST else { return methodNotAllowed("POST") }
      return await reloadConfig(request)
    case .metrics:
      guard request.method == .GET else { return methodNotAllowed("GET") }
      // Every provider's name, state and expiry: the inventory /v1/status filters per caller.
      guard isAdmin(request) else { return denied(request, provider: nil, admin: true) }
      return await metrics()
    case .tokenInfo(let name):
      guard request.method == .GET else { return methodNotAllowed("GET") }
      return await tokenInfo(request, provider: name)
    case .login(let name):
      switch request.method {
      case .GET: return await loginStatus(request, provider: name)
      case .POST: return await startLogin(request, provider: name)
      default: return methodNotAllowed("GET, POST")
      }
    case .loginComplete(let name):
      guard request.method == .POST else { return methodNotAllowed("POST") }
      return await completeLogin(request, provider: name)
    case .logout(let name):
      guard request.method == .POST else { return methodNotAllowed("POST") }
      return await logout(request, provider: name)
    }
  }

  // MARK: Token

  struct TokenQuery {
    var scopes: ScopeSet
    var minValid: Double?
    var plain: Bool
  }

  struct BadRequest: Error {
    var code: String
    var message: String
  }

  func parseTokenRequest(_ request: ServerRequest, provider: ProviderServing) throws(BadRequest) -> TokenQuery
  {
    let config = provider.config
    let name = config.name
    var scopes = provider.defaultScopes
    if let s = request.query["scope"] {
      scopes = ScopeSet(parsing: s)
      // `scope=`, `scope=+`, `scope=%20`: an empty set would reach the token endpoint as a
      // request without `scope`, which many servers answer with every scope the client has.
      guard !scopes.scopes.isEmpty else {
        throw BadRequest(
          code: "invalid_scope",
          message: "the scope parameter names no scope; leave scope out for the provider's default scopes")
      }
      let outside = scopes.outside(config.allowedScopes)
      if !outside.isEmpty {
        throw BadRequest(
          code: "invalid_scope",
          message:
            "scope \(outside.joined(separator: " ")) is not in providers.\(name).allowed_scopes (\(config.allowedScopes.joined(separator: " ")))"
        )
      }
    }
    var minValid: Double?
    if let m = request.query["min_valid"] {
      guard let v = Int(m), v >= 0, v <= 86_400 else {
        throw BadRequest(code: "bad_request", message: "min_valid must be whole seconds between 0 and 86400")
      }
      minValid = Double(v)
    }
    return TokenQuery(scopes: scopes, minValid: minValid, plain: Self.prefersPlain(request.header("accept")))
  }

  /// `Accept` names text/plain and not application/json (compared as bytes, case-insensitively).
  static func prefersPlain(_ accept: String?) -> Bool {
    guard let accept else { return false }
    return contains(accept, "text/plain") && !contains(accept, "application/json")
  }

  static func contains(_ hay: String, _ needle: StaticString) -> Bool {
    let n = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
    let h = Array(hay.utf8)
    guard h.count >= n.count, let first = n.first else { return false }
    for i in 0...(h.count - n.count) where h[i] | 0x20 == first {
      var j = 1
      while j < n.count, h[i + j] | 0x20 == n[j] { j += 1 }
      if j == n.count { return true }
    }
    return false
  }

  func serveToken(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    // Access first, for known and unknown names alike: a caller who may not use NAME learns
    // nothing about which providers exist (no 404, no did-you-mean; admins pass every check).
    guard authorised(request, provider: name) else { return denied(request, provider: name) }
    guard let provider = broker.servingView(provider: name).provider else { return unknownProvider(name) }
    let query: TokenQuery
    do { query = try parseTokenRequest(request, provider: provider) } catch {
      return self.error(.badRequest, error.code, error.message)
    }
    switch await provider.engine.token(scopes: query.scopes, minValid: query.minValid) {
    case .success(let token):
      return tokenResponse(
        token, provider: provider.config, plain: query.plain, now: broker.environment.clock.now())
    case .failure(let failure):
      return serveFailure(failure)
    }
  }

  /// A token that cannot be served: 503, with a retry hint where waiting helps.
  func serveFailure(_ failure: ServeFailure) -> ServerResponse {
    switch failure {
    case .unavailable(let message, let retryAfter):
      return error(
        .serviceUnavailable, "unavailable", message, headers: [("Retry-After", String(retryAfter))])
    case .misconfigured(let message):
      // No retry helps until the configuration changes: the message names the key.
      return error(.serviceUnavailable, "misconfigured", message, headers: [("Retry-After", "300")])
    case .needsLogin(let message):
      // The contract's 503 code is `unavailable`; the message says what to do (log in again).
      return error(.serviceUnavailable, "unavailable", message, headers: [("Retry-After", "300")])
    }
  }

  func tokenResponse(_ token: Token, provider: ProviderConfig, plain: Bool, now: Double) -> ServerResponse {
    answerResponse(TokenAnswer(token, provider: provider), plain: plain, now: now)
  }

  /// A token is never kept by a cache on the way.
  static let noStore = [("Cache-Control", "no-store")]
  /// The heads of a token answer, encoded once.
  static let jsonTokenHead = PreparedHead(status: .ok, headers: noStore)
  static let plainTokenHead = PreparedHead(status: .ok, contentType: "text/plain", headers: noStore)

  func answerResponse(_ answer: TokenAnswer, plain: Bool, now: Double) -> ServerResponse {
    plain
      ? ServerResponse(Self.plainTokenHead, body: answer.plain)
      : ServerResponse(Self.jsonTokenHead, body: answer.json(now: now))
  }

  // MARK: Status, refresh, reload

  func status(_ request: ServerRequest) async -> ServerResponse {
    let all = await broker.statuses()
    let visible = isAdmin(request) ? all : all.filter { authorised(request, provider: $0.name) }
    var w = JSONWriter.Object()
    w.field("version", BrokerVersion.current)
    w.field("uptime", Int(broker.environment.clock.now() - broker.startedAt))
    w.raw("providers", JSONWriter.array(visible.map { $0.json(now: broker.environment.clock.now()) }))
    return ServerResponse(status: .ok, body: w.finished() + [0x0A])
  }

  func refresh(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: name, admin: true) }
    guard let engine = broker.engine(named: name) else { return unknownProvider(name) }
    let status = await engine.refreshNow()
    return ServerResponse(status: .ok, body: status.json(now: broker.environment.clock.now()) + [0x0A])
  }

  func reloadConfig(_ request: ServerRequest) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: nil, admin: true) }
    if let problems = await reload() {
      var w = JSONWriter.Object()
      var inner = JSONWriter.Object()
      inner.field("code", "invalid_config")
      inner.field("message", "the new configuration was refused; the old one stays in force")
      inner.raw(
        "problems",
        JSONWriter.array(
          problems.map { p in
            var b: [UInt8] = []
            JSONWriter.appendString(p, to: &b)
            return b
          }))
      w.raw("error", inner.finished())
      return ServerResponse(status: .badRequest, body: w.finished() + [0x0A])
    }
    return ServerResponse(status: .ok, body: Array(#"{"reloaded":true}"#.utf8) + [0x0A])
  }

  func metrics() async -> ServerResponse {
    let metrics = broker.environment.metrics
    metrics.update(await broker.statuses(), now: broker.environment.clock.now())
    if let fleet = broker.environment.fleet { metrics.update(fleet: fleet) }
    return ServerResponse(
      status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render())
  }

  // MARK: Access

  func authorised(_ request: ServerRequest, provider: String) -> Bool {
    guard let peer = request.peer else { return false }
    return broker.access.mayUse(
      provider: provider, uid: peer.uid, gid: peer.gid, groups: peer.groups)
  }

  func isAdmin(_ request: ServerRequest) -> Bool {
    guard let peer = request.peer else { return false }
    return broker.access.isAdmin(uid: peer.uid, gid: peer.gid, groups: peer.groups)
  }

  func denied(_ request: ServerRequest, provider: String?, admin: Bool = false) -> ServerResponse {
    logRefusal(request, provider: provider)
    let uid = request.peer.map { "uid \($0.uid)" } ?? "this caller"
    let message =
      admin
      ? "\(uid) is not in [broker] admins"
      : "\(uid) may not use \(provider ?? ""); add it to providers.\(provider ?? "").allow"
    return error(.forbidden, "forbidden", message)
  }

  /// The `denied` notice, at most one per uid per ``RefusalThrottle/window`` (the next line
  /// counts the ones left out), with the path cut to ``maxLoggedPathBytes``: a refused peer
  /// cannot flood the journal and get the daemon's own lines rate-limited away.
  func logRefusal(_ request: ServerRequest, provider: String?) {
    let now = broker.environment.clock.now()
    let key = request.peer?.uid ?? RefusalThrottle.noPeer
    guard let suppressed = refusals.withLockedValue({ $0.admit(key, now: now) }) else { return }
    var meta: Logger.Metadata = ["event": "denied"]
    if let provider { meta["provider"] = "\(Self.truncated(provider))" }
    if let peer = request.peer {
      meta["caller_uid"] = "\(peer.uid)"
      meta["caller_pid"] = "\(peer.pid)"
    }
    var message = "request refused: \(request.method) \(Self.truncated(request.path))"
    if suppressed > 0 {
      meta["suppressed"] = "\(suppressed)"
      message += " (and \(suppressed) more from this uid not logged)"
    }
    logger.notice("\(message)", metadata: meta)
  }

  /// Longest path (or provider name) quoted in a refusal line.
  static let maxLoggedPathBytes = 128

  /// `text` cut to ``maxLoggedPathBytes`` bytes, `...` marking a cut. The parser admits only
  /// visible ASCII in a request target, so a byte cut never splits a character.
  static func truncated<S: StringProtocol>(_ text: S) -> String {
    let bytes = text.utf8
    guard bytes.count > maxLoggedPathBytes else { return String(text) }
    return String(decoding: bytes.prefix(maxLoggedPathBytes), as: UTF8.self) + "..."
  }

  // MARK: Errors

  func unknownProvider(_ name: String) -> ServerResponse {
    var message = "no provider named \(name)"
    if let s = Suggestion.closest(to: name, in: broker.providerNames) { message += "; did you mean '\(s)'?" }
    return error(.notFound, "unknown_provider", message)
  }

  func methodNotAllowed(_ allowed: String) -> ServerResponse {
    error(.methodNotAllowed, "method_not_allowed", "use \(allowed)", headers: [("Allow", allowed)])
  }

  func error(
    _ status: HTTPResponseStatus, _ code: String, _ message: String, headers: [(String, String)] = []
  ) -> ServerResponse {
    ServerResponse(status: status, headers: headers, body: ErrorBody.json(code: code, message: message))
  }
}

/// A request path's bytes, as `SocketAPI.route` reads them.
typealias PathBytes = Slice<UnsafeBufferPointer<UInt8>>

extension Slice where Base == UnsafeBufferPointer<UInt8> {
  fileprivate func equals(_ literal: StaticString) -> Bool {
    elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
  }

  /// The rest after `prefix`, or nil when it does not start with it.
  fileprivate func dropPrefix(_ prefix: StaticString) -> Self? {
    let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
    guard count >= p.count, self.prefix(p.count).elementsEqual(p) else { return nil }
    return self.dropFirst(p.count)
  }

  /// The part before `suffix`, or nil when it does not end with it.
  fileprivate func dropSuffix(_ suffix: StaticString) -> Self? {
    let p = UnsafeBufferPointer(start: suffix.utf8Start, count: suffix.utf8CodeUnitCount)
    guard count >= p.count, self.suffix(p.count).elementsEqual(p) else { return nil }
    return self.dropLast(p.count)
  }

  /// These bytes as one path segment (a provider's name): nil when empty or holding a `/`.
  fileprivate var segment: String? {
    isEmpty || contains(UInt8(ascii: "/")) ? nil : String(decoding: self, as: UTF8.self)
  }
}

/// Per-uid throttle of refusal log lines: the first refusal of a uid is logged, the ones in
/// the following ``window`` seconds are only counted, and the count goes into the next line.
struct RefusalThrottle {
  static let window: Double = 10
  /// The key of a caller without kernel credentials (TCP, `--dev` only).
  static let noPeer = UInt32.max
  /// More uids than this seen within a window: expired entries are dropped first.
  static let maxEntries = 4096

  struct Entry {
    var since: Double
    var suppressed: Int
  }

  var entries: [UInt32: Entry] = [:]

  /// nil: leave this refusal out; otherwise log it, with the number left out before it.
  mutating func admit(_ uid: UInt32, now: Double) -> Int? {
    if let e = entries[uid], now >= e.since, now - e.since < Self.window {
      entries[uid]?.suppressed += 1
      return nil
    }
    let suppressed = entries[uid]?.suppressed ?? 0
    if entries[uid] == nil, entries.count >= Self.maxEntries {
      entries = entries.filter { now >= $0.value.since && now - $0.value.since < Self.window }
    }
    entries[uid] = Entry(since: now, suppressed: 0)
    return suppressed
  }
}

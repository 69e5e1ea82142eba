import Logging
import TokenBrokerCore

/// Keeps one provider's tokens fresh: one cached token per scope set, a timer
/// per token, single flight per token, and at most one upstream request per
/// credential at a time (rotating refresh tokens must never race).
public actor ProviderEngine {
  public nonisolated let name: String
  public nonisolated let config: ProviderConfig
  let secrets: ResolvedSecrets
  let policy: RefreshPolicy
  let requestTimeout: Double
  let scopeIdleTimeout: Double
  let env: EngineEnvironment
  nonisolated let defaultScopes: ScopeSet
  var logger: Logger

  struct Slot {
    var token: Token?
    var inflight: Task<Result<Token, UpstreamFailure>, Never>?
    var failures = 0
    var lastError: String?
    var lastRefresh: Double?
    var nextRefresh: Double?
    var timer: (any TimerHandle)?
    var lastUsed: Double
  }

  var slots: [ScopeSet: Slot] = [:]
  /// The refresh token in force (rotated ones replace it, durably first).
  var refreshToken: String?
  var needsLogin = false
  var stopped = false
  private var upstreamBusy = false
  private var upstreamWaiters: [CheckedContinuation<Void, Never>] = []
  private var firstAttemptDone = false
  private var firstAttemptWaiters: [CheckedContinuation<Void, Never>] = []

  public init(
    config: ProviderConfig, settings: BrokerSettings, secrets: ResolvedSecrets, environment: EngineEnvironment
  ) {
    self.name = config.name
    self.config = config
    self.secrets = secrets
    self.policy = RefreshPolicy(settings)
    self.requestTimeout = settings.requestTimeout
    self.scopeIdleTimeout = settings.scopeIdleTimeout
    self.env = environment
    self.defaultScopes = ScopeSet(config.scopes)
    var logger = environment.logger
    logger[metadataKey: "provider"] = "\(config.name)"
    self.logger = logger
  }

  // MARK: Life cycle

  /// Loads persisted state and starts the first fetch (not awaited).
  public func start() {
    let now = env.clock.now()
    if config.grant == .apiKey, let key = secrets.apiKey {
      let token = Token(accessToken: key, tokenType: "", issuedAt: now, expiresAt: nil, scope: [])
      slots[defaultScopes] = Slot(token: token, lastRefresh: now, lastUsed: now)
      env.cache.set(provider: config, scopes: defaultScopes, token: token, now: now)
      markFirstAttemptDone()
      return
    }
    loadState()
    slots[defaultScopes] = Slot(lastUsed: now)
    if needsLogin {
      markFirstAttemptDone()
      return
    }
    _ = beginRefresh(defaultScopes)
  }

  /// Returns once the first fetch of the default token has finished, either way.
  public func awaitFirstAttempt() async {
    if firstAttemptDone { return }
    await withCheckedContinuation { firstAttemptWaiters.append($0) }
  }

  private func markFirstAttemptDone() {
    guard !firstAttemptDone else { return }
    firstAttemptDone = true
    for w in firstAttemptWaiters { w.resume() }
    firstAttemptWaiters.removeAll()
  }

  /// Cancels every timer; in-flight requests finish but schedule nothing.
  public func stop() {
    stopped = true
    for key in slots.keys {
      slots[key]?.timer?.cancel()
      slots[key]?.timer = nil
    }
    env.cache.remove(provider: name)
    markFirstAttemptDone()
  }

  /// Waits for every in-flight refresh (tests and shutdown).
  public func settle() async {
    while let task = slots.values.compactMap(\.inflight).first {
      _ = await task.value
    }
  }

  // MARK: Serving

  /// A token for `scopes` with at least `max(minValid, [broker] min_valid)` left,
  /// refreshing first when the cache cannot satisfy the request.
  public func token(scopes: ScopeSet, minValid: Double?) async -> Result<Token, ServeFailure> {
    let now = env.clock.now()
    let wanted = max(policy.minValid, minValid ?? 0)
    if slots[scopes] == nil { slots[scopes] = Slot(lastUsed: now) }
    slots[scopes]!.lastUsed = now
    if let t = slots[scopes]!.token, t.remaining(at: now) >= wanted { return .success(t) }
    if needsLogin { return .failure(.needsLogin(message: needsLoginMessage)) }
    let slot = slots[scopes]!
    if let t = slot.token, t.lifetime < wanted, slot.inflight == nil, slot.failures == 0 {
      return .failure(
        .unavailable(
          message:
            "\(name) issues tokens valid for \(Int(t.lifetime)) s, less than the \(Int(wanted)) s asked for",
          retryAfter: 1))
    }
    // In backoff: do not let callers hammer the upstream.
    if slot.inflight == nil, slot.failures > 0, let next = slot.nextRefresh, next > now {
      return .failure(
        .unavailable(
          message: "\(name): \(slot.lastError ?? "refresh failing")",
          retryAfter: Int((next - now).rounded(.up))))
    }
    let result = await beginRefresh(scopes).value
    let after = env.clock.now()
    if let t = slots[scopes]?.token, t.remaining(at: after) >= wanted { return .success(t) }
    if needsLogin { return .failure(.needsLogin(message: needsLoginMessage)) }
    let retry = Int(max(1, ((slots[scopes]?.nextRefresh ?? after + 1) - after).rounded(.up)))
    switch result {
    case .success(let t):
      return .failure(
        .unavailable(
          message:
            "\(name) issued a token valid for \(Int(t.remaining(at: after))) s, less than the \(Int(wanted)) s asked for",
          retryAfter: retry))
    case .failure(let f):
      return .failure(.unavailable(message: "\(name): \(redact(f.description))", retryAfter: retry))
    }
  }

  var needsLoginMessage: String {
    "\(name) needs a new refresh token: put one in providers.\(name).refresh_token and reload"
  }

  /// Admin: fetch a new default token now (joins one already in flight).
  public func refreshNow() async -> ProviderStatus {
    if config.grant != .apiKey {
      if needsLogin, config.grant == .refreshToken {
        return status()
      }
      _ = await beginRefresh(defaultScopes).value
    }
    return status()
  }

  // MARK: Status

  public func status() -> ProviderStatus {
    let now = env.clock.now()
    let slot = slots[defaultScopes] ?? Slot(lastUsed: now)
    let state: ProviderState
    if needsLogin && !(slot.token.map { $0.remaining(at: now) > 0 } ?? false) {
      state = .needsLogin
    } else if let t = slot.token, t.remaining(at: now) > 0 {
      state = (slot.failures > 0 || needsLogin) ? .degraded : .ok
    } else if slot.failures > 0 {
      state = .failed
    } else {
      state = slot.inflight != nil ? .refreshing : .pending
    }
    var expiresIn: Int?
    if let exp = slot.token?.expiresAt { expiresIn = Int((exp - now).rounded(.down)) }
    return ProviderStatus(
      name: name, grant: config.grant, state: state, expiresIn: expiresIn, lastRefresh: slot.lastRefresh,
      nextRefresh: slot.nextRefresh, failures: slot.failures,
      lastError: needsLogin && slot.lastError == nil ? needsLoginMessage : slot.lastError,
      cachedScopeSets: slots.values.filter { $0.token != nil }.count)
  }

  // MARK: Refresh

  func beginRefresh(_ key: ScopeSet) -> Task<Result<Token, UpstreamFailure>, Never> {
    if let running = slots[key]?.inflight { return running }
    let task = Task { await self.runRefresh(key) }
    slots[key, default: Slot(lastUsed: env.clock.now())].inflight = task
    slots[key]!.timer?.cancel()
    slots[key]!.timer = nil
    return task
  }

  private func runRefresh(_ key: ScopeSet) async -> Result<Token, UpstreamFailure> {
    await acquireUpstream()
    let result = await exchange(scopes: key)
    releaseUpstream()
    apply(result, to: key)
    if key == defaultScopes { markFirstAttemptDone() }
    return result
  }

  private func apply(_ result: Result<Token, UpstreamFailure>, to key: ScopeSet) {
    let now = env.clock.now()
    guard var slot = slots[key] else { return }
    slot.inflight = nil
    switch result {
    case .success(let token):
      slot.token = token
      slot.failures = 0
      slot.lastError = nil
      slot.lastRefresh = now
      slot.nextRefresh = policy.nextRefresh(for: token, now: now, random: env.random())
      // A stopped engine (replaced by a reload) must not overwrite its successor's cache.
      if !stopped { env.cache.set(provider: config, scopes: key, token: token, now: now) }
    case .failure(let failure):
      slot.failures += 1
      slot.lastError = redact(failure.description)
      if needsLogin && config.grant == .refreshToken {
        slot.nextRefresh = nil
      } else {
        let delay = policy.delay(
          after: failure.kind, attempt: slot.failures, retryAfter: failure.retryAfter, random: env.random())
        slot.nextRefresh = now + delay
      }
    }
    slots[key] = slot
    schedule(key)
    env.changes.raise()
  }

  private func schedule(_ key: ScopeSet) {
    guard !stopped, let at = slots[key]?.nextRefresh else { return }
    slots[key]!.timer?.cancel()
    slots[key]!.timer = env.clock.schedule(at: at) { [weak self] in
      await self?.timerFired(key)
    }
  }

  func timerFired(_ key: ScopeSet) async {
    guard !stopped, var slot = slots[key], slot.inflight == nil else { return }
    slot.timer = nil
    slots[key] = slot
    let now = env.clock.now()
    if key != defaultScopes {
      let used = max(slot.lastUsed, env.cache.lastUsed(provider: name, scopes: key) ?? 0)
      if now - used > scopeIdleTimeout {
        slots.removeValue(forKey: key)
        env.cache.remove(provider: name, scopes: key)
        logger.debug("dropped idle scope set", metadata: ["scope": "\(key)", "event": "scope_dropped"])
        return
      }
    }
    _ = await beginRefresh(key).value
  }

  // MARK: Upstream, one at a time per credential

  private func acquireUpstream() async {
    if !upstreamBusy {
      upstreamBusy = true
      return
    }
    await withCheckedContinuation { upstreamWaiters.append($0) }
  }

  private func releaseUpstream() {
    if upstreamWaiters.isEmpty {
      upstreamBusy = false
    } else {
      upstreamWaiters.removeFirst().resume()
    }
  }

  /// Replaces known secrets in upstream text, which is shown in status and logs.
  func redact(_ text: String) -> String {
    var out = text
    var known = secrets.values
    if let refreshToken { known.append(refreshToken) }
    for t in slots.values.compactMap({ $0.token?.accessToken }) { known.append(t) }
    for s in known where s.count >= 4 { out = out.replacingOccurrences(of: s, with: "[redacted]") }
    return out
  }
}

import Logging
import TokenBrokerCore

/// Executes one provider's `RefreshStateMachine`: it feeds the machine events (a caller
/// wants a token, a timer fired, the upstream answered, a write finished, reload, stop)
/// and carries out the actions it returns. Every decision is the machine's; this actor
/// only talks to the edges (transport, state store, token cache, timers, callers).
package actor ProviderEngine {
  package nonisolated let name: String
  /// Who the credential belongs to (`token_url`, `client_id`, `username`, grant, seed): a
  /// reload that keeps it keeps this engine and its refresh token; one that changes it
  /// gets a new engine that never sees the old refresh token.
  package nonisolated let identity: CredentialIdentity
  let env: EngineEnvironment
  var logger: Logger

  /// What a reload may change without a new engine.
  struct Current: Sendable {
    var config: ProviderConfig
    var secrets: ResolvedSecrets
    var settings: BrokerSettings
  }
  private var current: Current

  var machine: RefreshStateMachine
  private var timers: [ScopeSet: any TimerHandle] = [:]
  private var waiters: [Int: CheckedContinuation<Result<Token, ServeFailure>, Never>] = [:]
  private var nextWaiter = 0
  private(set) var started = false
  private var startWaiters: [CheckedContinuation<Void, Never>] = []
  private var firstAttemptWaiters: [CheckedContinuation<Void, Never>] = []
  private var idleWaiters: [CheckedContinuation<Void, Never>] = []
  /// Writes of the credential, one after another in the order the machine asked for them.
  private var persistTail: Task<Void, Never>?

  /// What this broker knows of its tokens in the fleet (README "Fleet").
  var fleetLedger = FleetLedger()

  /// The pending login, if any (README "Logging in"), and what waits on it.
  var login: LoginStateMachine
  var loginPollTimer: (any TimerHandle)?
  /// Callers of `GET .../login?wait=` and of `login/complete`, woken on every change.
  var loginWatchers: [CheckedContinuation<Void, Never>] = []

  package init(
    config: ProviderConfig, settings: BrokerSettings, secrets: ResolvedSecrets, environment: EngineEnvironment
  ) {
    self.name = config.name
    self.identity = CredentialIdentity(config, secrets: secrets)
    self.env = environment
    self.current = Current(config: config, secrets: secrets, settings: settings)
    self.machine = RefreshStateMachine(
      settings: Self.machineSettings(config, settings),
      credential: .init(refreshToken: secrets.refreshToken, needsLogin: false))
    self.login = LoginStateMachine(name: config.name)
    var logger = environment.logger
    logger[metadataKey: "provider"] = "\(config.name)"
    self.logger = logger
  }

  static func machineSettings(_ p: ProviderConfig, _ s: BrokerSettings) -> RefreshStateMachine.Settings {
    var policy = RefreshPolicy(s)
    policy.minValid = p.minValid ?? s.minValid
    return RefreshStateMachine.Settings(
      name: p.name, grant: p.grant, policy: policy,
      minValidKey: p.minValid == nil
        ? "[broker] min_valid (or set providers.\(p.name).min_valid)"
        : "providers.\(p.name).min_valid",
      scopeIdleTimeout: s.scopeIdleTimeout, defaultScopes: ScopeSet(p.scopes),
      loginCommand: loginCommand(p))
  }

  /// `tokenctl login NAME` (with `--device` when the device endpoint is the only one).
  static func loginCommand(_ p: ProviderConfig) -> String? {
    if p.login.authorizeURL != nil { return "tokenctl login \(p.name)" }
    if p.login.deviceAuthorizationURL != nil { return "tokenctl login \(p.name) --device" }
    return nil
  }

  var config: ProviderConfig { current.config }
  var secrets: ResolvedSecrets { current.secrets }
  var requestTimeout: Double { current.settings.requestTimeout }

  /// Sends one upstream request with the provider's CA bundle, through `[broker] https_proxy`
  /// unless the endpoint's host is exempt, within `request_timeout`.
  func sendUpstream(_ request: TokenRequest) async throws(UpstreamFailure) -> UpstreamResponse {
    try await env.transport.send(
      request, caFile: config.caFile, proxy: current.settings.proxy(for: request.url), timeout: requestTimeout
    )
  }
  var defaultScopes: ScopeSet { machine.settings.defaultScopes }

  /// The settings in force (a reload compares them with the new ones).
  func currentSettings() -> Current { current }

  // MARK: Life cycle

  /// Loads the persisted credential (off the cooperative pool) and starts the first fetch,
  /// unless the previous run handed over a default token still servable (`restored`, README
  /// "Restarts and upgrades").
  package func start(restored: [ScopeSet: Token] = [:]) async {
    guard !started else { return }
    let now = env.clock.now()
    if config.grant == .apiKey, let key = secrets.apiKey {
      let token = Token(accessToken: key, tokenType: "", issuedAt: now, expiresAt: nil, scope: [])
      execute(machine.start(now: now, apiKey: token))
    } else {
      let credential = await loadCredential()
      machine = RefreshStateMachine(settings: machine.settings, credential: credential)
      execute(machine.start(now: env.clock.now(), restored: restored, random: env.random()))
      let taken = machine.slots.values.filter { $0.token != nil }.count
      if taken > 0 {
        logger.info(
          "\(taken) token\(taken == 1 ? "" : "s") taken over from the previous run; no request needed",
          metadata: ["event": "tokens_taken_over"])
      }
    }
    started = true
    for w in startWaiters { w.resume() }
    startWaiters.removeAll()
  }

  private func awaitStarted() async {
    if started { return }
    await withCheckedContinuation { startWaiters.append($0) }
  }

  /// Returns once the first fetch of the default token has finished, either way.
  package func awaitFirstAttempt() async {
    if machine.firstAttemptDone { return }
    await withCheckedContinuation { firstAttemptWaiters.append($0) }
  }

  /// New settings for the same credential (a reload that changed `allow`, scopes, timing,
  /// a client secret): the refresh token and any request in flight carry on.
  package func reconfigure(config: ProviderConfig, settings: BrokerSettings, secrets: ResolvedSecrets) {
    let old = current.config
    current = Current(config: config, secrets: secrets, settings: settings)
    // Extra request parameters and headers shape the token (an audience, a resource).
    let stale = old.params != config.params || old.headers != config.headers
    execute(
      machine.reconfigure(
        Self.machineSettings(config, settings), tokensStale: stale, now: env.clock.now(), random: env.random()
      ))
    // Answers are rendered with the provider's settings (its api_key_header, name).
    for (scopes, slot) in machine.slots {
      if let token = slot.token, slot.unservable == nil {
        env.cache.set(provider: config, scopes: scopes, token: token, now: env.clock.now())
      }
    }
  }

  /// Sends nothing more; callers get a 503; a request on the wire still has its rotated
  /// refresh token persisted when it answers (`settle` waits for that).
  package func stop() {
    executeLogin(login.cancel())
    execute(machine.stop())
    for (_, t) in timers { t.cancel() }
    timers.removeAll()
  }

  /// The tokens the next run may take over: every scope set's, still servable, of a grant
  /// that asks the upstream (an api_key needs no handing over).
  package func handover() -> [TokenHandover.Entry] {
    guard config.grant != .apiKey, !machine.credential.needsLogin else { return [] }
    let now = env.clock.now()
    return machine.slots.compactMap { scopes, slot in
      guard let token = slot.token, slot.unservable == nil,
        machine.settings.policy.isServable(token, now: now, requestedMinValid: nil)
      else { return nil }
      return TokenHandover.Entry(provider: name, identity: identity, scopes: scopes, token: token)
    }.sorted { $0.scopes.description < $1.scopes.description }
  }

  /// Waits until no request is on the wire or queued and every write has finished.
  package func settle() async {
    if machine.isIdle { return }
    await withCheckedContinuation { idleWaiters.append($0) }
  }

  // MARK: Serving

  /// A token for `scopes` with at least `max(minValid, min_valid)` left, refreshing first
  /// when the cache cannot satisfy the request.
  package func token(scopes: ScopeSet, minValid: Double?) async -> Result<Token, ServeFailure> {
    await awaitStarted()
    let id = nextWaiter
    nextWaiter += 1
    let (answer, actions) = machine.tokenWanted(scopes, requested: minValid, waiter: id, now: env.clock.now())
    if let answer {
      execute(actions)
      return answer
    }
    return await withCheckedContinuation { continuation in
      waiters[id] = continuation
      execute(actions)
    }
  }

  /// Admin: fetch a new default token now (joins one already in flight).
  package func refreshNow() async -> ProviderStatus {
    await awaitStarted()
    execute(machine.refreshWanted(now: env.clock.now()))
    await settle()
    return status()
  }

  func timerFired(_ key: ScopeSet) async {
    timers[key] = nil
    let now = env.clock.now()
    execute(machine.timerFired(key, now: now, cacheLastUsed: env.cache.lastUsed(provider: name, scopes: key)))
    await settle()
  }

  // MARK: Status

  package func status() -> ProviderStatus {
    let now = env.clock.now()
    let slot = machine.defaultSlot
    var expiresIn: Int?
    if let exp = slot?.token?.expiresAt { expiresIn = Int((exp - now).rounded(.down)) }
    var state = machine.state(now: now)
    if login.isWaiting(now: now), [.needsLogin, .failed, .pending].contains(state) { state = .loginPending }
    return ProviderStatus(
      name: name, grant: config.grant, state: state, expiresIn: expiresIn,
      lastRefresh: slot?.lastRefresh, nextRefresh: slot?.nextRefresh, failures: slot?.failures ?? 0,
      lastError: machine.lastError, cachedScopeSets: machine.slots.values.filter { $0.token != nil }.count,
      fleet: fleetStatus())
  }

  // MARK: Actions

  /// Carries out the machine's actions, in order.
  func execute(_ actions: [RefreshStateMachine.Action]) {
    for action in actions {
      switch action {
      case .send(let scopes, let grant):
        Task { await self.send(scopes, grant) }
      case .persist(let credential):
        enqueuePersist(credential)
      case .publish(let scopes, let token):
        env.cache.set(provider: config, scopes: scopes, token: token, now: env.clock.now())
      case .unpublish(let scopes):
        if let scopes {
          env.cache.remove(provider: name, scopes: scopes)
        } else {
          env.cache.remove(provider: name)
        }
        if let scopes, scopes != defaultScopes {
          logger.debug("dropped idle scope set", metadata: ["scope": "\(scopes)", "event": "scope_dropped"])
        }
      case .schedule(let scopes, let at):
        timers[scopes]?.cancel()
        timers[scopes] = env.clock.schedule(at: at) { [weak self] in await self?.timerFired(scopes) }
      case .cancelTimer(let scopes):
        timers.removeValue(forKey: scopes)?.cancel()
      case .answer(let waiter, let result):
        waiters.removeValue(forKey: waiter)?.resume(returning: result)
      case .loginFinished(let failure):
        loginExchangeEnded(failure)
      }
    }
    if machine.firstAttemptDone, !firstAttemptWaiters.isEmpty {
      for w in firstAttemptWaiters { w.resume() }
      firstAttemptWaiters.removeAll()
    }
    if machine.isIdle, !idleWaiters.isEmpty {
      for w in idleWaiters { w.resume() }
      idleWaiters.removeAll()
    }
  }

  private func enqueuePersist(_ credential: RefreshStateMachine.Credential) {
    let previous = persistTail
    let record = ProviderStateRecord(
      refreshToken: credential.refreshToken, seed: seedFingerprint, needsLogin: credential.needsLogin,
      updatedAt: env.clock.now(), identity: identity.fingerprint)
    persistTail = Task {
      await previous?.value
      let ok = await self.write(record)
      self.persistFinished(ok: ok)
    }
  }

  private func persistFinished(ok: Bool) {
    execute(machine.persisted(ok: ok, now: env.clock.now(), random: env.random()))
    env.changes.raise()
  }

  func answered(
    _ scopes: ScopeSet, _ outcome: RefreshStateMachine.Outcome, rotated: String?
  ) {
    execute(
      machine.upstreamAnswered(scopes, outcome, rotated: rotated, now: env.clock.now(), random: env.random()))
    env.changes.raise()
  }
}

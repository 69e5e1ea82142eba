/// One provider's refresh logic as a pure state machine: events in, actions out.
///
/// The engine actor feeds it what happened (a token was wanted, a timer fired, the
/// upstream answered, a write finished, a reload, a stop) and executes the actions it
/// returns (send one request, persist the credential, publish a token to the fast path,
/// schedule a timer, answer a waiting caller). Nothing here does I/O or reads a clock:
/// `now` and a uniform `random` in `0..<1` come with each event, so tests drive every
/// transition on a manual clock (README "Architecture").
///
/// It owns the credential (the refresh token in force) and sends at most one upstream
/// request at a time for it: a rotating refresh token is never presented twice, and a
/// rotated one is persisted before any token of that answer is published or served.
package struct RefreshStateMachine: Sendable {
  package private(set) var settings: Settings
  package private(set) var credential: Credential
  package private(set) var slots: [ScopeSet: Slot] = [:]
  /// The scope set whose request is on the wire, and whether it presented the refresh token.
  package private(set) var inFlight: (scopes: ScopeSet, usedRefreshToken: Bool)?
  /// An answer held back until its rotated refresh token is on disk (`login`: a login's).
  private var awaitingPersist: (scopes: ScopeSet, outcome: Outcome, login: Bool)?
  /// A request is on the wire or its answer waits for a write: `loggedOut` must wait.
  package var isBusy: Bool { inFlight != nil || awaitingPersist != nil }
  /// A login's exchange waiting for the credential to be free, and whether one is on the wire.
  private var loginQueued: RequestGrant?
  package private(set) var loginInFlight = false
  private var persistsPending = 0
  /// Scope sets waiting for the credential, the default set first.
  private var queue: [ScopeSet] = []
  /// Scope sets whose request on the wire was made with settings a reload has replaced.
  private var refetch: Set<ScopeSet> = []
  package private(set) var stopped = false
  /// The last durable write failed: the credential lives in memory only (status `degraded`).
  package private(set) var persistFailed = false
  /// The default token's first attempt has ended, either way (start-up waits for it).
  package private(set) var firstAttemptDone = false

  package init(settings: Settings, credential: Credential) {
    self.settings = settings
    self.credential = credential
  }

  /// Nothing on the wire, queued, or waiting for a write.
  package var isIdle: Bool {
    inFlight == nil && queue.isEmpty && awaitingPersist == nil && persistsPending == 0 && loginQueued == nil
  }

  package var defaultSlot: Slot? { slots[settings.defaultScopes] }

  // MARK: Events

  /// Start: an api_key provider publishes its key; others fetch the default token
  /// unless a login is needed. `restored` are the tokens the previous run handed over
  /// (README "Restarts and upgrades"): each one still servable is published and refreshed
  /// on its own schedule, with no request now.
  package mutating func start(
    now: Double, apiKey: Token? = nil, restored: [ScopeSet: Token] = [:], random: Double = 0.5
  ) -> [Action] {
    let key = settings.defaultScopes
    var slot = Slot(lastUsed: now)
    if let apiKey {
      slot.token = apiKey
      slot.lastRefresh = now
      slots[key] = slot
      firstAttemptDone = true
      return [.publish(key, apiKey)]
    }
    slots[key] = slot
    if credential.needsLogin || (settings.needsRefreshToken && credential.refreshToken == nil) {
      credential.needsLogin = true
      firstAttemptDone = true
      return []
    }
    var actions: [Action] = []
    // The default set first, then the others in a fixed order (tests pin the actions).
    let others = restored.keys.filter { $0 != key }.sorted { $0.description < $1.description }
    for scopes in (restored[key] == nil ? [] : [key]) + others
    where slots.count < settings.maxScopeSets || scopes == key {
      let token = restored[scopes]!
      guard settings.policy.isServable(token, now: now, requestedMinValid: nil),
        unservableMessage(token) == nil
      else { continue }
      var taken = slots[scopes] ?? Slot(lastUsed: now)
      taken.token = token
      taken.lastRefresh = token.issuedAt
      taken.nextRefresh = settings.policy.nextRefresh(for: token, now: now, random: random)
      slots[scopes] = taken
      if scopes == key { firstAttemptDone = true }
      actions.append(.publish(scopes, token))
      if let at = taken.nextRefresh { actions.append(.schedule(scopes, at: at)) }
    }
    return slots[key]?.token == nil ? actions + enqueue(key) + pump() : actions
  }

  /// A caller wants a token for `scopes` with at least `requested` seconds left
  /// (and never less than the provider's min_valid). Either answered at once, or the
  /// caller is parked as `waiter` and answered by a later `.answer` action.
  package mutating func tokenWanted(
    _ scopes: ScopeSet, requested: Double?, waiter: Int, now: Double
  ) -> (answer: Result<Token, ServeFailure>?, actions: [Action]) {
    let wanted = effectiveMinValid(requested)
    if slots[scopes] == nil {
      if stopped {
        return (.failure(.unavailable(message: "\(settings.name) is restarting", retryAfter: 1)), [])
      }
      guard slots.count < settings.maxScopeSets else {
        return (
          .failure(
            .unavailable(
              message:
                "\(settings.name) already keeps \(settings.maxScopeSets) scope sets; ask for one in use or retry once one is idle",
              retryAfter: 60)), []
        )
      }
      slots[scopes] = Slot(lastUsed: now)
    }
    slots[scopes]!.lastUsed = now
    let slot = slots[scopes]!
    // Tokens that live no longer than min_valid are never served, not even in their first second.
    if let message = slot.unservable { return (.failure(.misconfigured(message: message)), []) }
    if let t = slot.token, RefreshPolicy.isServable(t, now: now, minValid: wanted) {
      return (.success(t), [])
    }
    if credential.needsLogin { return (.failure(.needsLogin(message: needsLoginMessage)), []) }
    if stopped {
      return (.failure(.unavailable(message: "\(settings.name) is restarting", retryAfter: 1)), [])
    }
    // A fresh token would not meet the request either: refuse instead of refreshing per call.
    if let t = slot.token, let requested, requested > settings.policy.minValid,
      !t.lifetime.isInfinite, requested > t.lifetime / 2
    {
      return (
        .failure(
          .unavailable(
            message:
              "\(settings.name) issues tokens valid for \(Int(t.lifetime)) s; ask for min_valid of at most \(Int(t.lifetime / 2)) s",
            retryAfter: 1)), []
      )
    }
    // In backoff: callers do not hammer the upstream.
    let busy = slot.queued || inFlight?.scopes == scopes || awaitingPersist?.scopes == scopes
    if !busy, slot.failures > 0, let next = slot.nextRefresh, next > now {
      return (
        .failure(
          .unavailable(
            message: "\(settings.name): \(slot.lastError ?? "refresh failing")",
            retryAfter: Int((next - now).rounded(.up)))), []
      )
    }
    slots[scopes]!.waiters.append((waiter, wanted))
    if busy { return (nil, []) }
    return (nil, enqueue(scopes) + pump())
  }

  /// A scope set's timer fired; `cacheLastUsed` is when the fast path last served it.
  package mutating func timerFired(_ scopes: ScopeSet, now: Double, cacheLastUsed: Double?) -> [Action] {
    guard !stopped, let slot = slots[scopes] else { return [] }
    if slot.queued || inFlight?.scopes == scopes || awaitingPersist?.scopes == scopes { return [] }
    if scopes != settings.defaultScopes {
      let used = max(slot.lastUsed, cacheLastUsed ?? 0)
      if now - used > settings.scopeIdleTimeout, slot.waiters.isEmpty {
        slots.removeValue(forKey: scopes)
        return [.unpublish(scopes)]
      }
    }
    if credential.needsLogin { return [] }
    return enqueue(scopes) + pump()
  }

  /// Admin: refresh the default token now (joins one already queued or on the wire).
  package mutating func refreshWanted(now: Double) -> [Action] {
    let key = settings.defaultScopes
    guard !stopped, slots[key] != nil, !credential.needsLogin else { return [] }
    if slots[key]!.queued || inFlight?.scopes == key || awaitingPersist?.scopes == key { return [] }
    return enqueue(key) + pump()
  }

  /// The request sent for `scopes` came back. `rotated` is a refresh token found in a
  /// 2xx answer, even one whose other fields were refused: the provider has already
  /// retired the one presented, so it is kept either way.
  package mutating func upstreamAnswered(
    _ scopes: ScopeSet, _ outcome: Outcome, rotated: String?, now: Double, random: Double
  ) -> [Action] {
    let usedRefreshToken = inFlight?.usedRefreshToken ?? false
    inFlight = nil
    let login = loginInFlight
    loginInFlight = false
    if login, case .failure(let failure) = outcome {
      // A refused code or a pending device login: the credential in force is untouched.
      return [.loginFinished(failure)] + pump()
    }
    if let rotated, !rotated.isEmpty, rotated != credential.refreshToken {
      credential = Credential(refreshToken: rotated, needsLogin: false)
      awaitingPersist = (scopes, outcome, login)
      persistsPending += 1
      return [.persist(credential)]
    }
    if login {
      // No refresh token came with the login: its token is served until it expires.
      if rotated == nil || rotated?.isEmpty == true { credential.refreshToken = nil }
      return loggedIn(scopes, outcome, now: now, random: random)
    }
    return finish(scopes, outcome, usedRefreshToken: usedRefreshToken, now: now, random: random)
  }

  /// Another broker of the fleet refreshed `scopes`, or logged in (README "Fleet"): its token
  /// is served from now on and refreshed on its schedule, and its refresh token becomes the
  /// credential (persisted; a provider that needed a login no longer does). Nothing is sent.
  /// Ignored while this broker's own request for the scope set is on the wire, or its answer
  /// waits for a write, and when the token is the one already held.
  package mutating func adopted(
    _ scopes: ScopeSet, _ token: Token, refreshToken: String?, now: Double, random: Double
  ) -> [Action] {
    guard !stopped, var slot = slots[scopes], inFlight?.scopes != scopes, awaitingPersist?.scopes != scopes,
      slot.token != token
    else { return [] }
    var actions: [Action] = []
    // A request of another scope set that presented the refresh token brings a newer one.
    if let rt = refreshToken, rt != credential.refreshToken || credential.needsLogin,
      inFlight?.usedRefreshToken != true
    {
      credential.refreshToken = rt
      credential.needsLogin = false
      persistsPending += 1
      actions.append(.persist(credential))
    }
    slot.token = token
    slot.failures = 0
    slot.lastError = nil
    slot.lastRefresh = now
    slot.unservable = unservableMessage(token)
    slot.nextRefresh =
      slot.unservable == nil
      ? settings.policy.nextRefresh(for: token, now: now, random: random) : now + settings.policy.backoffCap
    slots[scopes] = slot
    if scopes == settings.defaultScopes { firstAttemptDone = true }
    if slot.unservable == nil { actions.append(.publish(scopes, token)) }
    if let at = slot.nextRefresh, !slot.queued { actions.append(.schedule(scopes, at: at)) }
    return actions + answerWaiters(scopes, now: now)
  }

  /// A login's exchange is ready (`LoginStateMachine`): it goes on the wire as soon as the
  /// credential is free, before anything queued, and replaces any earlier one not yet sent.
  package mutating func loginWanted(_ grant: RequestGrant, now: Double) -> [Action] {
    guard !stopped else {
      return [.loginFinished(UpstreamFailure(.retryLater, message: "\(settings.name) is restarting"))]
    }
    var actions: [Action] = []
    if loginQueued != nil {
      actions.append(.loginFinished(UpstreamFailure(.retryLater, message: "replaced by a newer login")))
    }
    loginQueued = grant
    return actions + pump()
  }

  /// Logout: the credential is forgotten (durably) and nothing is served until a login.
  /// The engine revokes first and calls this once the machine is idle. `reason` is each scope
  /// set's `lastError` (a logout on another broker of the fleet says where it happened).
  package mutating func loggedOut(now: Double, reason: String? = nil) -> [Action] {
    credential = Credential(refreshToken: nil, needsLogin: true)
    var actions: [Action] = [.unpublish(nil)]
    for key in slots.keys.sorted(by: { $0.description < $1.description }) {
      slots[key]!.token = nil
      slots[key]!.failures = 0
      slots[key]!.lastError = reason
      slots[key]!.unservable = nil
    }
    persistsPending += 1
    actions.append(.persist(credential))
    return actions + needLogin(now: now)
  }

  /// A login's token arrived (its refresh token, if any, is on disk by now).
  private mutating func loggedIn(_ scopes: ScopeSet, _ outcome: Outcome, now: Double, random: Double)
    -> [Action]
  {
    credential.needsLogin = false
    refetch.remove(scopes)
    // Other scope sets were left waiting for a login: fetch the ones in use again.
    var actions = finish(scopes, outcome, usedRefreshToken: false, now: now, random: random)
    for key in slots.keys.sorted(by: { $0.description < $1.description }) where key != scopes {
      if slots[key]!.token == nil || !slots[key]!.waiters.isEmpty { actions += enqueue(key) }
    }
    return [.loginFinished(nil)] + actions + pump()
  }

  /// A `.persist` finished (`ok` false: the write failed and the credential is in memory only).
  package mutating func persisted(ok: Bool, now: Double, random: Double) -> [Action] {
    persistsPending = max(0, persistsPending - 1)
    persistFailed = !ok
    guard persistsPending == 0, let held = awaitingPersist else { return pump() }
    awaitingPersist = nil
    if held.login { return loggedIn(held.scopes, held.outcome, now: now, random: random) }
    return finish(held.scopes, held.outcome, usedRefreshToken: true, now: now, random: random)
  }

  /// A reload kept this credential with new settings: reschedule under the new policy.
  /// `tokensStale`: what shapes a token changed (request `params`, `headers`): the tokens
  /// held were issued for the old request and are fetched again, the credential kept.
  package mutating func reconfigure(
    _ new: Settings, tokensStale: Bool = false, now: Double, random: Double
  ) -> [Action] {
    let old = settings
    settings = new
    var actions: [Action] = []
    if tokensStale {
      for key in slots.keys.sorted(by: { $0.description < $1.description }) {
        actions += [.unpublish(key), .cancelTimer(key)]
        if key != new.defaultScopes, slots[key]!.waiters.isEmpty, !slots[key]!.queued, inFlight?.scopes != key
        {
          slots.removeValue(forKey: key)
          continue
        }
        slots[key]!.token = nil
        slots[key]!.unservable = nil
        slots[key]!.failures = 0
        slots[key]!.lastError = nil
        slots[key]!.nextRefresh = nil
        if inFlight?.scopes == key || awaitingPersist?.scopes == key {
          refetch.insert(key)
        } else if !credential.needsLogin {
          actions += enqueue(key)
        }
      }
      return actions + pump()
    }
    if old.defaultScopes != new.defaultScopes, slots[new.defaultScopes] == nil {
      slots[new.defaultScopes] = Slot(lastUsed: now)
      if !credential.needsLogin { actions += enqueue(new.defaultScopes) }
    }
    guard old.policy != new.policy else { return actions + pump() }
    for (key, slot) in slots {
      guard let token = slot.token, slot.failures == 0, !slot.queued, inFlight?.scopes != key else {
        continue
      }
      slots[key]!.unservable = unservableMessage(token)
      let next =
        slots[key]!.unservable == nil
        ? settings.policy.nextRefresh(for: token, now: now, random: random)
        : now + settings.policy.backoffCap
      slots[key]!.nextRefresh = next
      if let next { actions.append(.schedule(key, at: next)) }
    }
    return actions + pump()
  }

  /// Stop: no new request is sent; the one on the wire still has its rotated refresh
  /// token persisted when it answers. Waiting callers get a 503.
  package mutating func stop() -> [Action] {
    guard !stopped else { return [] }
    stopped = true
    firstAttemptDone = true
    var actions: [Action] = [.unpublish(nil)]
    for key in slots.keys.sorted(by: { $0.description < $1.description }) {
      actions.append(.cancelTimer(key))
      actions += answerAll(
        key, .failure(.unavailable(message: "\(settings.name) is restarting", retryAfter: 1)))
      slots[key]!.queued = false
    }
    queue.removeAll()
    if loginQueued != nil {
      loginQueued = nil
      actions.append(.loginFinished(UpstreamFailure(.retryLater, message: "\(settings.name) is restarting")))
    }
    return actions
  }

  // MARK: Status

  /// The provider's state, read from the default slot and the credential.
  package func state(now: Double) -> ProviderState {
    guard let slot = defaultSlot else { return .pending }
    let servable =
      slot.token.map { RefreshPolicy.isServable($0, now: now, minValid: settings.policy.minValid) } ?? false
    if credential.needsLogin { return servable ? .degraded : .needsLogin }
    if slot.unservable != nil { return .failed }
    if servable { return slot.failures > 0 || persistFailed ? .degraded : .ok }
    if slot.failures > 0 { return .failed }
    let busy = slot.queued || inFlight?.scopes == settings.defaultScopes || awaitingPersist != nil
    return busy ? .refreshing : .pending
  }

  /// The default slot's last error, or why it needs a login or cannot be served.
  package var lastError: String? {
    let slot = defaultSlot
    if credential.needsLogin && slot?.lastError == nil { return needsLoginMessage }
    return slot?.unservable ?? slot?.lastError
  }

  package var needsLoginMessage: String {
    if let command = settings.loginCommand { return "\(settings.name) needs a login: run \(command)" }
    return
      "\(settings.name) needs a new refresh token: put one in providers.\(settings.name).refresh_token and reload"
  }

  // MARK: Internals

  func effectiveMinValid(_ requested: Double?) -> Double { max(settings.policy.minValid, requested ?? 0) }

  private func unservableMessage(_ token: Token) -> String? {
    guard !token.lifetime.isInfinite, token.lifetime <= settings.policy.minValid else { return nil }
    return
      "\(settings.name) issues tokens valid for \(Int(token.lifetime)) s, no more than its min_valid of \(Int(settings.policy.minValid)) s, so none can be served: lower \(settings.minValidKey)"
  }

  private mutating func enqueue(_ scopes: ScopeSet) -> [Action] {
    guard slots[scopes] != nil, !slots[scopes]!.queued, !stopped else { return [] }
    slots[scopes]!.queued = true
    // The default token goes first: scope subsets never starve it.
    if scopes == settings.defaultScopes { queue.insert(scopes, at: 0) } else { queue.append(scopes) }
    return [.cancelTimer(scopes)]
  }

  /// Sends the next queued request when the credential is free.
  private mutating func pump() -> [Action] {
    guard inFlight == nil, awaitingPersist == nil, !stopped else { return [] }
    if let login = loginQueued {
      loginQueued = nil
      loginInFlight = true
      inFlight = (settings.defaultScopes, false)
      return [.send(settings.defaultScopes, login)]
    }
    guard !queue.isEmpty else { return [] }
    let next = queue.removeFirst()
    slots[next]?.queued = false
    guard slots[next] != nil else { return pump() }
    if let rt = credential.refreshToken {
      inFlight = (next, true)
      return [.send(next, .refresh(rt))]
    }
    if settings.needsRefreshToken {
      credential.needsLogin = true
      return needLogin(now: nil)
    }
    inFlight = (next, false)
    return [.send(next, .primary)]
  }

  private mutating func finish(
    _ scopes: ScopeSet, _ outcome: Outcome, usedRefreshToken: Bool, now: Double, random: Double
  ) -> [Action] {
    if scopes == settings.defaultScopes { firstAttemptDone = true }
    guard slots[scopes] != nil else { return pump() }
    var actions: [Action] = []
    if refetch.remove(scopes) != nil, case .token = outcome, !stopped {
      // Issued for the request a reload replaced: ask again; waiters keep waiting.
      return enqueue(scopes) + pump()
    }
    switch outcome {
    case .token(let token):
      var slot = slots[scopes]!
      slot.token = token
      slot.failures = 0
      slot.lastError = nil
      slot.lastRefresh = now
      slot.unservable = unservableMessage(token)
      if slot.unservable == nil {
        slot.nextRefresh = settings.policy.nextRefresh(for: token, now: now, random: random)
      } else {
        // Keep asking now and then: the provider may start issuing longer tokens.
        slot.nextRefresh = now + settings.policy.backoffCap
      }
      slots[scopes] = slot
      if stopped { return actions + answerAll(scopes, .failure(restarting)) }
      if slot.unservable == nil { actions.append(.publish(scopes, token)) }
      if let at = slot.nextRefresh { actions.append(.schedule(scopes, at: at)) }
      actions += answerWaiters(scopes, now: now)
    case .failure(let failure):
      if failure.kind == .refreshTokenRejected, usedRefreshToken {
        credential.refreshToken = nil
        if settings.needsRefreshToken {
          credential.needsLogin = true
          slots[scopes]!.failures += 1
          slots[scopes]!.lastError = failure.description
          persistsPending += 1
          return [.persist(credential)] + needLogin(now: now)
        }
        // A password / client_credentials provider falls back to its own grant.
        persistsPending += 1
        actions.append(.persist(credential))
        if !stopped {
          slots[scopes]!.queued = true
          queue.insert(scopes, at: 0)
        }
        return actions + pump()
      }
      var slot = slots[scopes]!
      slot.failures += 1
      slot.lastError = failure.description
      let delay = settings.policy.delay(
        after: failure.kind, attempt: slot.failures, retryAfter: failure.retryAfter, random: random)
      slot.nextRefresh = now + delay
      slots[scopes] = slot
      if !stopped { actions.append(.schedule(scopes, at: now + delay)) }
      actions += answerWaiters(scopes, now: now)
    }
    return actions + pump()
  }

  private var restarting: ServeFailure {
    .unavailable(message: "\(settings.name) is restarting", retryAfter: 1)
  }

  /// Every waiter of `scopes` gets the slot's token when it meets what they asked, else a 503.
  private mutating func answerWaiters(_ scopes: ScopeSet, now: Double) -> [Action] {
    guard let slot = slots[scopes] else { return [] }
    let waiters = slot.waiters
    slots[scopes]!.waiters.removeAll()
    let retry = Int(max(1, ((slot.nextRefresh ?? now + 1) - now).rounded(.up)))
    return waiters.map { w in
      if let t = slot.token, slot.unservable == nil,
        RefreshPolicy.isServable(t, now: now, minValid: w.minValid)
      {
        return .answer(waiter: w.id, .success(t))
      }
      if let message = slot.unservable {
        return .answer(waiter: w.id, .failure(.misconfigured(message: message)))
      }
      if slot.failures > 0 {
        return .answer(
          waiter: w.id,
          .failure(
            .unavailable(
              message: "\(settings.name): \(slot.lastError ?? "refresh failing")", retryAfter: retry))
        )
      }
      let left = Int(slot.token?.remaining(at: now) ?? 0)
      return .answer(
        waiter: w.id,
        .failure(
          .unavailable(
            message:
              "\(settings.name) issued a token valid for \(left) s, less than the \(Int(w.minValid)) s asked for",
            retryAfter: retry)))
    }
  }

  private mutating func answerAll(_ scopes: ScopeSet, _ result: Result<Token, ServeFailure>) -> [Action] {
    guard let waiters = slots[scopes]?.waiters else { return [] }
    slots[scopes]!.waiters.removeAll()
    return waiters.map { .answer(waiter: $0.id, result) }
  }

  /// The credential is gone: nothing is scheduled and every waiter hears so.
  private mutating func needLogin(now: Double?) -> [Action] {
    firstAttemptDone = true
    var actions: [Action] = []
    for key in slots.keys.sorted(by: { $0.description < $1.description }) {
      slots[key]!.nextRefresh = nil
      slots[key]!.queued = false
      actions.append(.cancelTimer(key))
      actions += answerAll(key, .failure(.needsLogin(message: needsLoginMessage)))
    }
    queue.removeAll()
    return actions
  }
}

/// What the refresh state machine is configured with, asks for and keeps per scope set
/// (README "Architecture").
extension RefreshStateMachine {
  package struct Settings: Sendable, Equatable {
    package var name: String
    package var grant: Grant
    /// refresh_at, jitter and the provider's effective min_valid.
    package var policy: RefreshPolicy
    /// Where the effective min_valid comes from, for messages: `providers.NAME.min_valid`.
    package var minValidKey: String
    package var scopeIdleTimeout: Double
    /// Scope sets one provider keeps at once (the default set always fits).
    package var maxScopeSets: Int = 32
    package var defaultScopes: ScopeSet
    /// The command that gets a new refresh token (`tokenctl login NAME`), when the provider
    /// has a login endpoint; messages of a provider that needs a login name it.
    package var loginCommand: String?

    package init(
      name: String, grant: Grant, policy: RefreshPolicy, minValidKey: String, scopeIdleTimeout: Double,
      defaultScopes: ScopeSet, loginCommand: String? = nil
    ) {
      self.loginCommand = loginCommand
      self.name = name
      self.grant = grant
      self.policy = policy
      self.minValidKey = minValidKey
      self.scopeIdleTimeout = scopeIdleTimeout
      self.defaultScopes = defaultScopes
    }

    /// Grants whose only credential is a refresh token: without one they need a login.
    var needsRefreshToken: Bool { grant.livesOnRefreshToken }
  }

  /// What the engine does for the machine.
  package enum Action: Sendable, Equatable {
    /// One upstream token request; report its outcome with `upstreamAnswered`.
    case send(ScopeSet, RequestGrant)
    /// Write the credential durably; report with `persisted`.
    case persist(Credential)
    /// Make `Token` servable on the fast path for this scope set.
    case publish(ScopeSet, Token)
    /// Drop a scope set's token from the fast path (nil: every one).
    case unpublish(ScopeSet?)
    /// Arm (or re-arm) this scope set's timer; report with `timerFired`.
    case schedule(ScopeSet, at: Double)
    case cancelTimer(ScopeSet)
    /// Answer a caller parked by `tokenWanted`.
    case answer(waiter: Int, Result<Token, ServeFailure>)
    /// A login's exchange ended: nil when its credential is persisted and its token served.
    case loginFinished(UpstreamFailure?)
  }

  /// What is persisted: the refresh token in force and whether a login is needed.
  package struct Credential: Sendable, Equatable, CustomStringConvertible {
    package var refreshToken: String?
    package var needsLogin: Bool
    package init(refreshToken: String?, needsLogin: Bool) {
      self.refreshToken = refreshToken
      self.needsLogin = needsLogin
    }
    package var description: String {
      "Credential(refresh_token: \(refreshToken == nil ? "none" : "<redacted>"), needsLogin: \(needsLogin))"
    }
  }

  /// What came back from one `send`.
  package enum Outcome: Sendable, Equatable {
    case token(Token)
    case failure(UpstreamFailure)
  }

  /// A scope set's token and schedule.
  package struct Slot: Sendable, Equatable {
    package var token: Token?
    package var failures = 0
    package var lastError: String?
    package var lastRefresh: Double?
    package var nextRefresh: Double?
    package var lastUsed: Double
    /// Set when the provider's tokens can never meet its min_valid: the message says which key.
    package var unservable: String?
    /// Waiting callers: id and the min_valid each asked for.
    var waiters: [(id: Int, minValid: Double)] = []
    var queued = false

    init(lastUsed: Double) { self.lastUsed = lastUsed }

    package static func == (a: Slot, b: Slot) -> Bool {
      a.token == b.token && a.failures == b.failures && a.lastError == b.lastError
        && a.lastRefresh == b.lastRefresh && a.nextRefresh == b.nextRefresh && a.lastUsed == b.lastUsed
        && a.unservable == b.unservable && a.waiters.map(\.id) == b.waiters.map(\.id) && a.queued == b.queued
    }
  }
}

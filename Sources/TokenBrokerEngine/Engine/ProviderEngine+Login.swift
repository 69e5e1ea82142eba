import Logging
import TokenBrokerCore

/// The login flows, logout and inspection of one provider (README "Logging in"). The
/// decisions are `LoginStateMachine`'s; the exchange of a code or a device code goes
/// through the refresh machine like any other request for this credential.
extension ProviderEngine {
  /// A refused login request: `code` is the API's error code.
  package typealias Refusal = LoginStateMachine.Refusal

  // MARK: Status

  package func loginView() -> LoginView {
    let now = env.clock.now()
    var methods: [String] = []
    if config.login.authorizeURL != nil { methods.append("browser") }
    if config.login.deviceAuthorizationURL != nil { methods.append("device") }
    return LoginView(
      provider: name, status: login.status(now: now), methods: methods, redirectURI: config.login.redirectURI,
      login: login.current, now: now)
  }

  /// The login's view once it changes from `since` (or at once when it is not waiting), or
  /// after `seconds`.
  package func waitForLogin(seconds: Double) async -> LoginView {
    let start = env.clock.now()
    let deadline = start + seconds
    let before = loginView()
    while true {
      let view = loginView()
      let now = env.clock.now()
      if view != before || !login.isWaiting(now: now) || now >= deadline { return view }
      let wakeAt = min(deadline, login.current?.expiresAt ?? deadline)
      let timer = env.clock.schedule(at: wakeAt) { [weak self] in await self?.wakeLoginWatchers() }
      await withCheckedContinuation { loginWatchers.append($0) }
      timer.cancel()
    }
  }

  func wakeLoginWatchers() {
    let watchers = loginWatchers
    loginWatchers.removeAll()
    for w in watchers { w.resume() }
  }

  // MARK: Browser

  /// Starts a browser login; returns the authorization URL to open.
  package func startBrowserLogin(redirectURI given: String?) -> Result<(LoginView, String), Refusal> {
    guard let endpoint = config.login.authorizeURL else {
      var message = "providers.\(name) has no authorize_url; add it to log in with a browser"
      if config.login.deviceAuthorizationURL != nil { message += ", or run tokenctl login \(name) --device" }
      return .failure(Refusal(code: "bad_request", message: message))
    }
    guard case .success(let configured) = RedirectURI.parse(config.login.redirectURI) else {
      return .failure(Refusal(code: "bad_request", message: "providers.\(name).redirect_uri is not usable"))
    }
    var redirect = configured
    if let given {
      guard case .success(let uri) = RedirectURI.parse(given), configured.admits(uri) else {
        return .failure(
          Refusal(
            code: "bad_request",
            message:
              "redirect_uri \(LoginStateMachine.printable(given)) is not providers.\(name).redirect_uri (\(configured))"
              + (configured.isLoopback && configured.port == nil ? " with a port" : "")))
      }
      redirect = uri
    }
    let now = env.clock.now()
    let verifier = PKCE.verifier(random: Self.randomBytes(32))
    let state = PKCE.randomValue(Self.randomBytes(16))
    let nonce = config.scopes.contains("openid") ? PKCE.randomValue(Self.randomBytes(16)) : nil
    let (_, actions) = login.startBrowser(
      state: state, verifier: verifier, nonce: nonce, redirectURI: redirect.description, now: now)
    executeLogin(actions)
    let url = AuthorizationRequest.url(
      endpoint: endpoint, clientID: config.clientID, redirectURI: redirect.description, scopes: config.scopes,
      state: state, challenge: PKCE.challenge(for: verifier), nonce: nonce,
      extra: config.login.authorizeParams)
    logger.notice("browser login started", metadata: ["event": "login_started", "method": "browser"])
    wakeLoginWatchers()
    return .success((loginView(), url))
  }

  /// The browser came back (the address it ended on, or its code and state): exchange the
  /// code and return once the refresh token is persisted, or why not.
  package func completeLogin(_ response: AuthorizationResponse) async -> Result<ProviderStatus, Refusal> {
    switch login.complete(response, now: env.clock.now()) {
    case .failure(let refusal):
      logger.notice(
        "login completion refused: \(refusal.code)",
        metadata: ["event": "login_refused", "reason": "\(refusal.code)"])
      wakeLoginWatchers()
      return .failure(refusal)
    case .success(let actions):
      let id = login.current?.id
      executeLogin(actions)
      wakeLoginWatchers()
      while login.current?.id == id, login.current?.status == .exchanging {
        await withCheckedContinuation { loginWatchers.append($0) }
      }
      guard let c = login.current, c.id == id else {
        return .failure(
          Refusal(code: "login_replaced", message: "a newer login of \(name) replaced this one"))
      }
      switch c.status {
      case .done: return .success(status())
      case .denied:
        return .failure(Refusal(code: "access_denied", message: c.message ?? "the login was denied"))
      default:
        return .failure(Refusal(code: "upstream_error", message: c.message ?? "the code exchange failed"))
      }
    }
  }

  // MARK: Device

  /// Starts a device login: asks the device authorization endpoint for a user code, then
  /// polls the token endpoint at its interval.
  package func startDeviceLogin() async -> Result<LoginView, Refusal> {
    guard
      let request = LoginRequests.deviceAuthorization(
        provider: config, secrets: secrets, requestID: RequestID.make(), userAgent: env.userAgent)
    else {
      var message = "providers.\(name) has no device_authorization_url; add it to log in with a code"
      if config.login.authorizeURL != nil { message += ", or run tokenctl login \(name) (a browser login)" }
      return .failure(Refusal(code: "bad_request", message: message))
    }
    let answer: Result<DeviceAuthorization, UpstreamFailure>
    do {
      let response = try await sendUpstream(request)
      if (200..<300).contains(response.status) {
        answer = DeviceAuthorization.parse(response.body)
      } else {
        let body = Array(redact(String(decoding: response.body, as: UTF8.self)).utf8)
        answer = .failure(
          ErrorResponseClassifier.classify(
            status: response.status, body: body, usedRefreshToken: false, retryAfter: nil))
      }
    } catch {
      answer = .failure(error)
    }
    switch answer {
    case .failure(let failure):
      let message = redact(failure.description)
      logger.warning(
        "device authorization failed: \(message)", metadata: ["event": "login_failed", "method": "device"])
      return .failure(
        Refusal(code: "upstream_error", message: "the device authorization request failed: \(message)"))
    case .success(let device):
      let (_, actions) = login.deviceStarted(device, now: env.clock.now())
      executeLogin(actions)
      logger.notice("device login started", metadata: ["event": "login_started", "method": "device"])
      wakeLoginWatchers()
      return .success(loginView())
    }
  }

  func loginPollDue() {
    loginPollTimer = nil
    executeLogin(login.pollDue(now: env.clock.now()))
    wakeLoginWatchers()
  }

  // MARK: Execution

  func executeLogin(_ actions: [LoginStateMachine.Action]) {
    for action in actions {
      switch action {
      case .exchange(let grant):
        execute(machine.loginWanted(grant, now: env.clock.now()))
      case .schedulePoll(let at):
        loginPollTimer?.cancel()
        loginPollTimer = env.clock.schedule(at: at) { [weak self] in await self?.loginPollDue() }
      case .cancelPoll:
        loginPollTimer?.cancel()
        loginPollTimer = nil
      }
    }
  }

  /// The refresh machine finished a login's exchange.
  func loginExchangeEnded(_ failure: UpstreamFailure?) {
    let method = login.current?.method.rawValue ?? "?"
    executeLogin(login.exchanged(failure, now: env.clock.now()))
    switch login.status(now: env.clock.now()) {
    case .done:
      logger.notice(
        "login completed; refresh token stored",
        metadata: ["event": "login_completed", "method": "\(method)"])
      fleetSeed()
    case .denied, .expired, .failed:
      logger.warning(
        "login ended: \(login.current?.message ?? "failed")",
        metadata: ["event": "login_failed", "method": "\(method)"])
    default:
      break
    }
    wakeLoginWatchers()
  }

  // MARK: Logout

  /// Revokes the refresh token (and the access tokens held) at `revocation_url`, then
  /// forgets them durably: the provider needs a login. Nothing is forgotten when the
  /// revocation fails.
  package func logout() async -> Result<(ProviderStatus, revoked: Bool), Refusal> {
    guard config.grant.livesOnRefreshToken else {
      return .failure(
        Refusal(
          code: "bad_request",
          message:
            "logout is for providers that live on a refresh token (refresh_token, authorization_code); \(name) uses \(config.grant.rawValue)"
        ))
    }
    executeLogin(login.cancel())
    wakeLoginWatchers()
    await settle()
    let refreshToken = machine.credential.refreshToken
    let accessTokens = machine.slots.values.compactMap { $0.token?.accessToken }
    var revoked = false
    if config.login.revocationURL != nil {
      var tokens: [(String, String)] = accessTokens.map { ($0, "access_token") }
      if let refreshToken { tokens.insert((refreshToken, "refresh_token"), at: 0) }
      for (token, hint) in tokens {
        if let failure = await revoke(token, hint: hint) {
          if hint == "refresh_token" {
            logger.warning("revocation failed: \(failure)", metadata: ["event": "logout_failed"])
            return .failure(
              Refusal(
                code: "upstream_error",
                message:
                  "revocation at providers.\(name).revocation_url failed: \(failure); nothing was forgotten, retry"
              ))
          }
          logger.notice("revoking an access token failed: \(failure)", metadata: ["event": "revoke_failed"])
        }
      }
      revoked = !tokens.isEmpty
    }
    await settle()
    execute(machine.loggedOut(now: env.clock.now()))
    await settle()
    await fleetForget()
    logger.notice(
      revoked
        ? "logged out; tokens revoked and forgotten" : "logged out; tokens forgotten (no revocation_url)",
      metadata: ["event": "logout"])
    env.changes.raise()
    return .success((status(), revoked))
  }

  /// nil when the server accepted the revocation (RFC 7009: 200 even for an unknown token).
  private func revoke(_ token: String, hint: String) async -> String? {
    guard
      let request = LoginRequests.revocation(
        provider: config, secrets: secrets, token: token, hint: hint, requestID: RequestID.make(),
        userAgent: env.userAgent)
    else { return nil }
    do {
      let response = try await sendUpstream(request)
      if (200..<300).contains(response.status) { return nil }
      let body = Array(redact(String(decoding: response.body, as: UTF8.self), also: [token]).utf8)
      return redact(
        ErrorResponseClassifier.classify(
          status: response.status, body: body, usedRefreshToken: false, retryAfter: nil
        )
        .description, also: [token])
    } catch {
      return redact(error.description, also: [token])
    }
  }

  // MARK: Inspection

  /// What the token for `scopes` says, never the token: a JWT's header and claims, or the
  /// provider's introspection answer.
  package func inspect(scopes: ScopeSet) async -> Result<TokenInfo, ServeFailure> {
    let token: Token
    switch await self.token(scopes: scopes, minValid: nil) {
    case .failure(let failure): return .failure(failure)
    case .success(let t): token = t
    }
    let secretsSeen = [token.accessToken] + [machine.credential.refreshToken].compactMap { $0 }
    if let (header, claims) = JWT.decode(token.accessToken) {
      return .success(.jwt(header: header, claims: TokenInfo.scrub(claims, secrets: secretsSeen)))
    }
    guard
      let request = LoginRequests.introspection(
        provider: config, secrets: secrets, token: token.accessToken, requestID: RequestID.make(),
        userAgent: env.userAgent)
    else {
      return .success(
        .opaque(
          nil,
          message: config.grant == .apiKey
            ? "an API key says nothing about itself"
            : "the token is not a JWT and providers.\(name) has no introspection_url"))
    }
    do {
      let response = try await sendUpstream(request)
      guard (200..<300).contains(response.status), let json = JSONValue.parse(response.body),
        json.object != nil
      else {
        return .success(
          .opaque(nil, message: "introspection answered \(response.status) without a JSON object"))
      }
      return .success(.opaque(TokenInfo.scrub(json, secrets: secretsSeen), message: nil))
    } catch {
      return .success(
        .opaque(nil, message: "introspection failed: \(redact(error.description, also: secretsSeen))"))
    }
  }

  static func randomBytes(_ count: Int) -> [UInt8] {
    var g = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
  }
}

import Logging
import TokenBrokerCore

extension ProviderEngine {
  /// One upstream request for `scopes`, as the machine asked; its outcome goes back to it.
  /// A provider shared with a fleet goes through the fleet's claim first (README "Fleet").
  func send(_ scopes: ScopeSet, _ grant: RequestGrant) async {
    if let fleet = env.fleet, sharesWithFleet, !grant.isLogin {
      await fleetSend(scopes, grant, fleet: fleet)
      return
    }
    let (outcome, rotated) = await exchange(scopes, grant)
    answered(scopes, outcome, rotated: rotated)
  }

  /// One upstream request: its outcome and the refresh token it brought, logged and counted.
  func exchange(_ scopes: ScopeSet, _ grant: RequestGrant) async -> (RefreshStateMachine.Outcome, String?) {
    let config = self.config
    let secrets = self.secrets
    let requestID = RequestID.make()
    let request = TokenRequestBuilder.build(
      provider: config, secrets: secrets, grant: grant, scopes: scopes.scopes, requestID: requestID,
      userAgent: env.userAgent)
    let presented: [String]
    let grantName: String
    switch grant {
    case .primary: (presented, grantName) = ([], config.grant.rawValue)
    case .refresh(let rt): (presented, grantName) = ([rt], "refresh_token")
    case .authorizationCode(let code, let verifier, _):
      (presented, grantName) = ([code, verifier], "authorization_code")
    case .deviceCode(let code): (presented, grantName) = ([code], "device_code")
    }
    var meta: Logger.Metadata = ["request_id": "\(requestID)", "grant": "\(grantName)"]
    if scopes != defaultScopes { meta["scope"] = "\(scopes)" }
    var rotated: String?
    var body2xx: [UInt8]?
    let outcome: RefreshStateMachine.Outcome
    do {
      var response = try await sendUpstream(request)
      if (200..<300).contains(response.status) {
        body2xx = response.body
      } else {
        // Redacted before the classifier shortens the provider's text: a secret cut in
        // two by the truncation would no longer be recognised.
        response.body = Array(redact(String(decoding: response.body, as: UTF8.self), also: presented).utf8)
      }
      let parsed = try TokenExchange.interpret(
        response, request: request, requestedScope: scopes.scopes, now: env.clock.now())
      rotated = parsed.refreshToken
      meta["event"] = grant.isLogin ? "login_exchanged" : "refreshed"
      meta["expires_in"] = "\(Int(parsed.token.remaining(at: env.clock.now())))"
      logger.info(grant.isLogin ? "login exchanged for a token" : "token refreshed", metadata: meta)
      env.metrics.refreshed(provider: name)
      outcome = .token(parsed.token)
    } catch {
      // A 2xx answer refused as a whole may still carry a rotated refresh token: read only
      // that field (an accepted answer is parsed once, above).
      rotated = body2xx.flatMap(TokenResponseParser.refreshToken(in:))
      var failure = error
      failure.message = redact(failure.message, also: presented + [rotated].compactMap { $0 })
      meta["reason"] = "\(failure.kind.rawValue)"
      if let status = failure.status { meta["status"] = "\(status)" }
      if grant.isLogin {
        // A device login's polls answer authorization_pending until the user approves.
        meta["event"] = "login_poll"
        let quiet = failure.code == "authorization_pending" || failure.code == "slow_down"
        logger.log(
          level: quiet ? .debug : .notice, "login exchange answered: \(failure.description)", metadata: meta)
        return (.failure(failure), nil)
      }
      meta["event"] = "refresh_failed"
      logger.warning("token refresh failed: \(failure.description)", metadata: meta)
      env.metrics.refreshFailed(provider: name, reason: failure.kind)
      if failure.kind == .refreshTokenRejected, grant.usesRefreshToken {
        if config.grant.livesOnRefreshToken {
          meta["event"] = "needs_login"
          logger.error("refresh token rejected; \(machine.needsLoginMessage)", metadata: meta)
        } else {
          logger.notice(
            "refresh token rejected; falling back to the \(config.grant.rawValue) grant", metadata: meta)
        }
      }
      outcome = .failure(failure)
    }
    if rotated != nil, case .failure = outcome {
      logger.notice(
        "the answer was refused but carried a new refresh token; keeping it",
        metadata: ["event": "refresh_token_kept", "request_id": "\(requestID)"])
    }
    return (outcome, rotated)
  }

  // MARK: State

  var seedFingerprint: String? { identity.seed }

  /// The credential to start from: the persisted refresh token when it belongs to this
  /// credential, else the configured seed. A file of another identity, or one that cannot
  /// be read, is set aside (never read again, kept for inspection).
  func loadCredential() async -> RefreshStateMachine.Credential {
    let seeded = RefreshStateMachine.Credential(
      refreshToken: secrets.refreshToken,
      needsLogin: config.grant.livesOnRefreshToken && secrets.refreshToken == nil)
    let store = env.store
    let name = self.name
    let loaded = await BlockingIO.run { () -> Result<ProviderStateRecord?, StateStore.Failure> in
      Result { () throws(StateStore.Failure) -> ProviderStateRecord? in try store.load(name) }
    }
    let now = env.clock.now()
    switch loaded {
    case .success(nil):
      return seeded
    case .success(let record?):
      if let id = record.identity, id != identity.fingerprint {
        let aside = await BlockingIO.run { store.setAside(name, why: "superseded", now: now) }
        logger.notice(
          "stored state belongs to another credential (token_url, client_id, username or grant changed); set aside as \(aside ?? "?") and not used",
          metadata: ["event": "state_superseded"])
        return seeded
      }
      if config.grant.livesOnRefreshToken, record.seed != seedFingerprint {
        logger.notice(
          "configured refresh_token is new; stored state superseded", metadata: ["event": "state_loaded"])
        return seeded
      }
      return RefreshStateMachine.Credential(
        refreshToken: record.refreshToken ?? (config.grant.livesOnRefreshToken ? nil : secrets.refreshToken),
        needsLogin: config.grant.livesOnRefreshToken && (record.needsLogin || record.refreshToken == nil))
    case .failure(let error):
      let aside = await BlockingIO.run { store.setAside(name, why: "corrupt", now: now) }
      guard config.grant.livesOnRefreshToken else {
        logger.error(
          "\(error.description); set aside as \(aside ?? "?"), starting from the configured grant",
          metadata: ["event": "state_unreadable"])
        return seeded
      }
      // The configured seed has most likely been rotated long ago: presenting it again is
      // what reuse detection punishes. Wait for a new one instead, and remember that.
      logger.error(
        "\(error.description); set aside as \(aside ?? "?"); \(machine.needsLoginMessage)",
        metadata: ["event": "state_unreadable"])
      let credential = RefreshStateMachine.Credential(refreshToken: nil, needsLogin: true)
      _ = await write(
        ProviderStateRecord(
          refreshToken: nil, seed: seedFingerprint, needsLogin: true, updatedAt: now,
          identity: identity.fingerprint))
      return credential
    }
  }

  /// Writes a state record durably off the cooperative pool; false (and a log line) when it fails.
  func write(_ record: ProviderStateRecord) async -> Bool {
    let store = env.store
    let name = self.name
    let result = await BlockingIO.run { () -> Result<Void, StateStore.Failure> in
      Result { () throws(StateStore.Failure) in try store.save(record, for: name) }
    }
    switch result {
    case .success:
      logger.debug("state saved", metadata: ["event": "state_saved"])
      return true
    case .failure(let error):
      logger.error(
        "cannot persist the refresh token (kept in memory only; a restart will need a new login): \(error.description)",
        metadata: ["event": "state_save_failed"])
      return false
    }
  }

  // MARK: Redaction

  /// Replaces every known secret in upstream text (shown in status and logs): the
  /// provider's secrets, the refresh tokens in play and the tokens held, each as it is,
  /// form-encoded and JSON-escaped, and the Basic credentials built from them.
  func redact(_ text: String, also extra: [String] = []) -> String {
    var known = secrets.values + extra
    if let rt = machine.credential.refreshToken { known.append(rt) }
    for slot in machine.slots.values { if let t = slot.token?.accessToken { known.append(t) } }
    if let id = config.clientID, let secret = secrets.clientSecret {
      known.append(Base64.encode(Array("\(id):\(secret)".utf8)))
    }
    var forms = Set<String>()
    for s in known where s.count >= 4 {
      forms.insert(s)
      // "=VALUE" form-encoded, without the "=".
      forms.insert(String(TokenRequestBuilder.formEncode([("", s)]).dropFirst()))
      var escaped: [UInt8] = []
      JSONWriter.appendString(s, to: &escaped)
      forms.insert(String(decoding: escaped.dropFirst().dropLast(), as: UTF8.self))
    }
    var out = text
    for form in forms.sorted(by: { $0.count > $1.count }) where out.contains(form) {
      out = out.replacing(form, with: "[redacted]")
    }
    return out
  }
}

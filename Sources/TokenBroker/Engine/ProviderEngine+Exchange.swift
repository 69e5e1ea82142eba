import Logging
import TokenBrokerCore

extension ProviderEngine {
  /// One token fetch: the refresh token when there is one (falling back to the
  /// provider's own grant when it is rejected), else the provider's grant.
  func exchange(scopes: ScopeSet) async -> Result<Token, UpstreamFailure> {
    var grant: RequestGrant
    if let refreshToken {
      grant = .refresh(refreshToken)
    } else if config.grant == .refreshToken {
      needsLogin = true
      return .failure(UpstreamFailure(.refreshTokenRejected, message: needsLoginMessage))
    } else {
      grant = .primary
    }
    while true {
      let requestID = RequestID.make()
      let request = TokenRequestBuilder.build(
        provider: config, secrets: secrets, grant: grant, scopes: scopes.scopes, requestID: requestID,
        userAgent: env.userAgent)
      var meta: Logger.Metadata = ["request_id": "\(requestID)", "grant": "\(grantName(grant))"]
      if scopes != defaultScopes { meta["scope"] = "\(scopes)" }
      do {
        let response = try await env.transport.send(request, caFile: config.caFile, timeout: requestTimeout)
        let parsed = try TokenExchange.interpret(
          response, request: request, requestedScope: scopes.scopes, now: env.clock.now())
        if let rotated = parsed.refreshToken, rotated != refreshToken {
          persistRefreshToken(rotated, requestID: requestID)
        }
        meta["event"] = "refreshed"
        meta["expires_in"] = "\(Int(parsed.token.remaining(at: env.clock.now())))"
        logger.info("token refreshed", metadata: meta)
        env.metrics.refreshed(provider: name)
        return .success(parsed.token)
      } catch {
        meta["event"] = "refresh_failed"
        meta["reason"] = "\(error.kind.rawValue)"
        if let status = error.status { meta["status"] = "\(status)" }
        logger.warning("token refresh failed: \(redact(error.description))", metadata: meta)
        env.metrics.refreshFailed(provider: name, reason: error.kind)
        guard error.kind == .refreshTokenRejected, grant.usesRefreshToken else { return .failure(error) }
        if config.grant == .refreshToken {
          needsLogin = true
          refreshToken = nil
          saveState(needsLogin: true, requestID: requestID)
          meta["event"] = "needs_login"
          logger.error("refresh token rejected; \(needsLoginMessage)", metadata: meta)
          return .failure(error)
        }
        // A password / client_credentials provider falls back to its own grant.
        refreshToken = nil
        saveState(needsLogin: false, requestID: requestID)
        logger.notice(
          "refresh token rejected; falling back to the \(config.grant.rawValue) grant", metadata: meta)
        grant = .primary
      }
    }
  }

  private func grantName(_ grant: RequestGrant) -> String {
    grant.usesRefreshToken ? "refresh_token" : config.grant.rawValue
  }

  // MARK: State

  var seedFingerprint: String? { secrets.refreshToken.map(ProviderStateRecord.fingerprint) }

  /// Reads the persisted refresh token; the configured one wins when it is new.
  func loadState() {
    refreshToken = secrets.refreshToken
    do {
      guard let record = try env.store.load(name) else { return }
      if config.grant == .refreshToken, record.seed != seedFingerprint {
        logger.notice(
          "configured refresh_token is new; stored state superseded", metadata: ["event": "state_loaded"])
        return
      }
      refreshToken = record.refreshToken ?? (config.grant == .refreshToken ? nil : secrets.refreshToken)
      needsLogin = config.grant == .refreshToken && (record.needsLogin || record.refreshToken == nil)
    } catch {
      logger.error("\(error.description)", metadata: ["event": "state_unreadable"])
      if config.grant == .refreshToken { needsLogin = secrets.refreshToken == nil }
    }
  }

  /// Writes the new refresh token durably before anything uses it.
  private func persistRefreshToken(_ token: String, requestID: String) {
    refreshToken = token
    saveState(needsLogin: false, requestID: requestID)
  }

  func saveState(needsLogin: Bool, requestID: String) {
    let record = ProviderStateRecord(
      refreshToken: refreshToken, seed: seedFingerprint, needsLogin: needsLogin, updatedAt: env.clock.now())
    do {
      try env.store.save(record, for: name)
      logger.debug("state saved", metadata: ["event": "state_saved", "request_id": "\(requestID)"])
    } catch {
      logger.error(
        "cannot persist the rotated refresh token (kept in memory only; a restart will need a new login): \(error.description)",
        metadata: ["event": "state_save_failed", "request_id": "\(requestID)"])
    }
  }
}

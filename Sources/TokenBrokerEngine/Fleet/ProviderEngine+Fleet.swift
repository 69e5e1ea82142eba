import Logging
import TokenBrokerCore

/// What one engine knows of its tokens in the fleet.
struct FleetLedger: Sendable {
  enum Role: String, Sendable { case refresher, follower }
  /// The default token's: this broker refreshed it last, or another did.
  var role: Role = .follower
  /// The node that refreshed the default token last (or logged in), as far as this broker knows.
  var refresher: String?
  /// The broker whose live claim this one last found in its way, by scope set: when this one
  /// claims next, it took the refresh over from it (its claim lapsed).
  var blockedBy: [ScopeSet: String] = [:]
  /// Commits the store did not take because it was unreachable, pushed when it is back.
  var pending: [ScopeSet: (claim: FleetClaim, tokens: FleetTokens)] = [:]
}

/// A provider's refreshes in a fleet (README "Fleet"): before asking the upstream, a broker
/// takes a token another broker committed, or claims the refresh; the answer is committed
/// (compare-and-set on the claimed version) before this broker uses its refresh token, and
/// a claim that lapsed and was taken over is refused there (fenced).
extension ProviderEngine {
  var sharesWithFleet: Bool { config.fleet && config.grant != .apiKey }

  func fleetKey(_ scopes: ScopeSet) -> FleetKey {
    FleetKey(
      provider: name, scopes: scopes == defaultScopes ? "" : scopes.description,
      identity: identity.fingerprint)
  }

  /// A committed token worth taking instead of refreshing: another broker's newer one, still
  /// servable and not yet due for its own refresh.
  func takeable(_ row: FleetRow?, for scopes: ScopeSet) -> FleetTokens? {
    guard let tokens = row?.tokens else { return nil }
    let now = env.clock.now()
    let policy = machine.settings.policy
    guard policy.isServable(tokens.token, now: now, requestedMinValid: nil),
      tokens.token != machine.slots[scopes]?.token,
      let due = policy.nextRefresh(for: tokens.token, now: now, random: 0.5), due > now + policy.minimumDelay
    else { return nil }
    return tokens
  }

  func fleetSend(_ scopes: ScopeSet, _ grant: RequestGrant, fleet: FleetMember) async {
    let key = fleetKey(scopes)
    var row: FleetRow?
    do {
      row = try await fleet.store.read(key)
      storeReached(fleet)
    } catch {
      await storeUnreachable(scopes, grant, error, fleet: fleet)
      return
    }
    if let row, row.loggedOut {
      loggedOutByFleet(scopes, row)
      return
    }
    if let tokens = takeable(row, for: scopes) {
      took(scopes, tokens, from: row?.refresher, fleet: fleet)
      answered(scopes, .token(tokens.token), rotated: tokens.refreshToken)
      return
    }
    var asked = env.clock.now()
    var won: FleetClaim?
    // Claim; when another broker holds the claim, wait for its commit (an announcement) or
    // for its claim to run out, then take its token or claim once more.
    for attempt in 0..<2 {
      asked = env.clock.now()
      do {
        won = try await fleet.store.claim(key, version: row?.version, node: fleet.node, lease: fleet.lease)
      } catch {
        await storeUnreachable(scopes, grant, error, fleet: fleet)
        return
      }
      if won != nil || attempt == 1 { break }
      fleet.count(\.claimsLost)
      if let holder = row?.holder { fleetLedger.blockedBy[scopes] = holder }
      let wait = min(fleet.lease, (row?.claimRemaining ?? fleet.lease) + 0.5)
      await fleet.awaitChange(key.id, seconds: wait, clock: env.clock)
      do {
        row = try await fleet.store.read(key)
      } catch {
        await storeUnreachable(scopes, grant, error, fleet: fleet)
        return
      }
      if let row, row.loggedOut {
        loggedOutByFleet(scopes, row)
        return
      }
      if let tokens = takeable(row, for: scopes) {
        took(scopes, tokens, from: row?.refresher, fleet: fleet)
        answered(scopes, .token(tokens.token), rotated: tokens.refreshToken)
        return
      }
    }
    guard let claim = won else {
      fleet.count(\.claimsLost)
      let holder = row?.holder.map { " (\($0))" } ?? ""
      let failure = UpstreamFailure(
        .retryLater, message: "another broker of the fleet\(holder) is refreshing \(name); retry shortly")
      answered(scopes, .failure(failure), rotated: nil)
      return
    }
    fleet.count(\.claimsWon)
    if let previous = fleetLedger.blockedBy.removeValue(forKey: scopes), previous != fleet.node {
      logger.notice(
        "took the refresh of \(key) over from \(previous), whose claim lapsed",
        metadata: ["event": "fleet_takeover", "from": "\(previous)"])
    }
    // Only local elapsed time is trusted: a claim that may lapse before the answer is back
    // is given up rather than used.
    guard env.clock.now() - asked < fleet.lease - requestTimeout - 1 else {
      try? await fleet.store.release(claim)
      answered(
        scopes, .failure(UpstreamFailure(.retryLater, message: "the fleet's claim took too long")),
        rotated: nil)
      return
    }
    // The fleet's refresh token is the one in force.
    var grant = grant
    if let shared = claim.row.tokens?.refreshToken, grant.usesRefreshToken || config.grant.livesOnRefreshToken
    {
      grant = .refresh(shared)
    }
    let (outcome, rotated) = await exchange(scopes, grant)
    guard case .token(let token) = outcome else {
      try? await fleet.store.release(claim)
      answered(scopes, outcome, rotated: rotated)
      return
    }
    var presented: String?
    if case .refresh(let rt) = grant { presented = rt }
    let tokens = FleetTokens(token: token, refreshToken: rotated ?? presented)
    do {
      if try await fleet.store.commit(claim, tokens: tokens, seed: identity.seed) {
        if scopes == defaultScopes {
          fleetLedger.role = .refresher
          fleetLedger.refresher = fleet.node
        }
      } else {
        fleet.count(\.fenced)
        logger.error(
          "fenced: this broker's claim on \(key) lapsed and another broker committed a newer token; this answer is not used (a provider with reuse detection may revoke the grant: see README \"Fleet\")",
          metadata: ["event": "fleet_fenced"])
        if let newer = try? await fleet.store.read(key) {
          if newer.loggedOut {
            loggedOutByFleet(scopes, newer)
            return
          }
          if let shared = newer.tokens {
            took(scopes, shared, from: newer.refresher, fleet: fleet)
            answered(scopes, .token(shared.token), rotated: shared.refreshToken)
            return
          }
        }
      }
    } catch {
      // The store went away between claim and commit: the answer is kept (persisted
      // locally by the machine) and pushed to the store when it is back.
      fleetLedger.pending[scopes] = (claim, tokens)
      storeLost(error, fleet: fleet)
    }
    answered(scopes, outcome, rotated: rotated)
  }

  /// With the store unreachable, valid tokens keep being served; a provider whose refresh
  /// token is shared (a refresh-token grant, which may rotate) is never refreshed alone, the
  /// others ask for their own grant locally.
  private func storeUnreachable(
    _ scopes: ScopeSet, _ grant: RequestGrant, _ error: any Error, fleet: FleetMember
  ) async {
    storeLost(error, fleet: fleet)
    if config.grant.livesOnRefreshToken {
      let failure = UpstreamFailure(
        .retryLater,
        message:
          "the fleet's store is unreachable; \(name)'s refresh token is shared, so it is not used without the store (README \"Fleet\")",
        retryAfter: 5)
      answered(scopes, .failure(failure), rotated: nil)
      return
    }
    let (outcome, rotated) = await exchange(scopes, .primary)
    answered(scopes, outcome, rotated: rotated)
  }

  private func storeLost(_ error: any Error, fleet: FleetMember) {
    if fleet.reached(false, error: "\(error)") {
      logger.error(
        "the fleet's store is unreachable: \(error); valid tokens are served, shared refresh tokens wait for it",
        metadata: ["event": "fleet_store_unreachable"])
    }
  }

  private func storeReached(_ fleet: FleetMember) {
    if fleet.reached(true) {
      logger.notice("the fleet's store is reachable again", metadata: ["event": "fleet_store_ok"])
    }
  }

  private func took(_ scopes: ScopeSet, _ tokens: FleetTokens, from holder: String?, fleet: FleetMember) {
    if scopes == defaultScopes {
      fleetLedger.role = holder == fleet.node ? .refresher : .follower
      fleetLedger.refresher = holder
    }
    logger.debug(
      "took the token another broker of the fleet refreshed",
      metadata: ["event": "fleet_took", "scope": "\(scopes)"])
  }

  // MARK: Announcements

  /// Another broker committed row `id`: take its token if it is one of ours and newer.
  package func fleetChanged(id: String) async {
    guard let fleet = env.fleet, sharesWithFleet, started else { return }
    guard let scopes = machine.slots.keys.first(where: { fleetKey($0).id == id }),
      machine.inFlight?.scopes != scopes
    else { return }
    guard let row = try? await fleet.store.read(fleetKey(scopes)) else { return }
    if row.loggedOut {
      forgetLoggedOut(row)
      return
    }
    guard let tokens = row.tokens else { return }
    let now = env.clock.now()
    guard tokens.token != machine.slots[scopes]?.token,
      machine.settings.policy.isServable(tokens.token, now: now, requestedMinValid: nil)
    else { return }
    took(scopes, tokens, from: row.refresher, fleet: fleet)
    execute(
      machine.adopted(scopes, tokens.token, refreshToken: tokens.refreshToken, now: now, random: env.random())
    )
    env.changes.raise()
  }

  /// The store is back (or the channel was reconnected): push what it missed, then read
  /// every row again.
  package func fleetResubscribed() async {
    guard let fleet = env.fleet, sharesWithFleet, started else { return }
    for (scopes, pending) in fleetLedger.pending {
      fleetLedger.pending[scopes] = nil
      do {
        if try await fleet.store.commit(pending.claim, tokens: pending.tokens, seed: identity.seed) {
          logger.notice(
            "pushed the token refreshed while the fleet's store was unreachable",
            metadata: ["event": "fleet_pushed"])
        } else {
          fleet.count(\.fenced)
          logger.error(
            "the fleet moved on while its store was unreachable: another broker refreshed \(fleetKey(scopes)) too; following it (README \"Fleet\")",
            metadata: ["event": "fleet_conflict"])
        }
      } catch {
        fleetLedger.pending[scopes] = pending
        return
      }
    }
    await fleetPoll()
  }

  /// Reads every row this engine serves and takes a newer token (the poll, and after a
  /// reconnection: what an announcement missed).
  package func fleetPoll() async {
    guard env.fleet != nil, sharesWithFleet, started else { return }
    for scopes in machine.slots.keys { await fleetChanged(id: fleetKey(scopes).id) }
  }

  /// A login on this broker seeds the whole fleet: its tokens become the row's new version,
  /// whatever the row held, and every other broker takes them.
  func fleetSeed() {
    guard let fleet = env.fleet, sharesWithFleet, let token = machine.defaultSlot?.token else { return }
    let tokens = FleetTokens(token: token, refreshToken: machine.credential.refreshToken)
    let key = fleetKey(defaultScopes)
    let seed = machine.credential.refreshToken.map(CredentialIdentity.fnv1a) ?? "login"
    fleetLedger.role = .refresher
    fleetLedger.refresher = fleet.node
    Task {
      do {
        _ = try await fleet.store.seed(key, tokens: tokens, seed: seed, node: fleet.node)
        logger.notice("the login seeded the fleet", metadata: ["event": "fleet_seeded"])
      } catch {
        logger.error(
          "the login could not seed the fleet (\(error)); the other brokers keep their tokens until they log in or this one refreshes",
          metadata: ["event": "fleet_seed_failed"])
      }
    }
  }

  /// A logout forgets the fleet's rows of this provider too.
  func fleetForget() async {
    guard let fleet = env.fleet, sharesWithFleet else { return }
    do {
      try await fleet.store.forget(provider: name, node: fleet.node)
    } catch {
      logger.error(
        "the fleet's rows of \(name) could not be forgotten (\(error)); the other brokers may still serve its tokens",
        metadata: ["event": "fleet_forget_failed"])
    }
  }

  /// This broker's refresh found the provider logged out on another broker: the request ends
  /// as a rejected refresh token would (the refresh token is forgotten durably, the provider
  /// needs a login), then the tokens held are forgotten too.
  private func loggedOutByFleet(_ scopes: ScopeSet, _ row: FleetRow) {
    answered(
      scopes, .failure(UpstreamFailure(.refreshTokenRejected, message: loggedOutMessage(row))), rotated: nil)
    forgetLoggedOut(row)
  }

  private func loggedOutMessage(_ row: FleetRow) -> String {
    "logged out on \(row.refresher ?? "another broker") of the fleet; tokenctl login \(name) on any broker serves it again"
  }

  /// Another broker logged the provider out (README "Fleet"): this one forgets its tokens and
  /// refresh token too, durably, as its own logout would, without revoking (that broker did).
  /// While a request is on the wire it waits: that request ends at the row (`loggedOutByFleet`).
  func forgetLoggedOut(_ row: FleetRow) {
    guard !machine.isBusy else { return }
    let holdsSomething =
      !machine.credential.needsLogin || machine.credential.refreshToken != nil
      || machine.slots.values.contains { $0.token != nil }
    guard holdsSomething else { return }
    let message = loggedOutMessage(row)
    execute(machine.loggedOut(now: env.clock.now(), reason: message))
    logger.notice("\(message)", metadata: ["event": "fleet_logged_out"])
    env.changes.raise()
  }

  /// The fleet's view for status.
  func fleetStatus() -> ProviderStatus.Fleet? {
    guard let fleet = env.fleet, sharesWithFleet else { return nil }
    return ProviderStatus.Fleet(
      role: fleetLedger.role.rawValue, holder: fleetLedger.refresher, store: fleet.health.rawValue)
  }
}

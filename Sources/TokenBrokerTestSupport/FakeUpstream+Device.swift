import Foundation

/// The device authorization grant (RFC 8628): the device authorization endpoint and the
/// `urn:ietf:params:oauth:grant-type:device_code` grant at the token endpoint, whose answers
/// come from a script the test sets (``FakeUpstream/scriptDevicePolls(_:)``).
extension FakeUpstream {
  /// `POST {base}/device` with `client_id` and `scope` in the dialect's body and client
  /// authentication, as an RFC 8628 3.1 device authorization endpoint: answers
  /// `{"device_code","user_code","verification_uri","verification_uri_complete","expires_in",
  /// "interval"}` (the verification URI on this server's own address) and records the request.
  func deviceAuthorization(_ r: Recorded) -> FakeAnswer {
    guard let p = parameters(r) else { return wrongDialect("a JSON or form body") }
    if let failure = clientAuthenticationFailure(r, p) { return failure }
    let now = self.now()
    let s = settings.login
    let host = r.headers["host"] ?? "127.0.0.1:\(port)"
    let verification = "\(scheme.withLockedValue { $0 })://\(host)\(dialect.base)/activate"
    let request = state.withLockedValue { st -> DeviceAuthorizationRequest in
      st.counter += 1
      let letters = Array("BCDFGHJKLMNPQRSTVWXZ")
      let user = (0..<8).map { i in String(letters[(st.counter * 7 + i * 3) % letters.count]) }.joined()
      let request = DeviceAuthorizationRequest(
        clientID: p["client_id"], scope: p["scope"],
        deviceCode: "dc_\(st.counter)_\(UUID().uuidString.prefix(12))",
        userCode: String(user.prefix(4)) + "-" + String(user.suffix(4)))
      st.login.deviceRequests.append(request)
      st.login.deviceGrants[request.deviceCode] = DeviceGrant(
        request: request, issuedAt: now, expiresIn: s.deviceLifetime, interval: s.deviceInterval)
      return request
    }
    return json(
      200,
      [
        "device_code": request.deviceCode, "user_code": request.userCode, "verification_uri": verification,
        "verification_uri_complete": verification + "?user_code=" + request.userCode,
        "expires_in": s.deviceLifetime, "interval": s.deviceInterval,
      ])
  }

  /// One poll of the device_code grant (client authentication already checked), answered as
  /// RFC 8628 3.5: an unknown or used-up device code is `invalid_grant`; past `expires_in`,
  /// `expired_token`; with `enforceDeviceInterval`, a poll sooner than the interval is
  /// `slow_down` (+5 s); else the script's next answer (`.pending` once it is used up).
  /// After `.deny` or `.expire` every poll repeats that answer. Every poll is counted.
  func pollDevice(_ p: [String: String]) -> FakeAnswer {
    let now = self.now()
    let enforce = settings.login.enforceDeviceInterval
    let code = p["device_code"] ?? ""
    let (answer, family, scope) = state.withLockedValue { s -> (DeviceAnswer?, Int?, String?) in
      s.login.devicePolls.append(now)
      guard var g = s.login.deviceGrants[code] else { return (nil, nil, nil) }
      defer { s.login.deviceGrants[code] = g }
      if let finished = g.finished { return (finished == .approve ? nil : finished, nil, nil) }
      if now - g.issuedAt >= Double(g.expiresIn) {
        g.finished = .expire
        return (.expire, nil, nil)
      }
      if enforce, let last = g.lastPoll, now - last < Double(g.interval) {
        g.lastPoll = now
        g.interval += 5
        return (.slowDown, nil, nil)
      }
      g.lastPoll = now
      let next = s.login.deviceScript.isEmpty ? DeviceAnswer.pending : s.login.deviceScript.removeFirst()
      switch next {
      case .pending: return (next, nil, nil)
      case .slowDown:
        g.interval += 5
        return (next, nil, nil)
      case .deny, .expire:
        g.finished = next
        return (next, nil, nil)
      case .approve:
        g.finished = next
        return (next, s.login.newFamily(scope: g.request.scope), g.request.scope)
      }
    }
    switch answer {
    case nil: return error(400, code: "invalid_grant", message: "unknown or used device code")
    case .pending: return error(400, code: "authorization_pending", message: "the user has not yet approved")
    case .slowDown: return error(400, code: "slow_down", message: "polling too fast")
    case .deny: return error(400, code: "access_denied", message: "the user denied the request")
    case .expire: return error(400, code: "expired_token", message: "the device code expired")
    case .approve:
      return issue(refresh: true, scope: scope ?? (dialect == .placeos ? "public" : nil), family: family)
    }
  }
}

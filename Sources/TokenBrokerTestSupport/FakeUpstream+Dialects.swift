import Foundation

/// A planned answer of the fake upstream.
enum FakeAnswer {
  case respond(status: Int, headers: [String: String], body: [UInt8])
  case stall
  case slowBody(interval: Double, body: [UInt8])
  indirect case delayed(Double, FakeAnswer)
}

extension FakeUpstream {
  /// Decides the answer for one request: the login endpoints (authorize, device, revoke,
  /// introspect, inspect) by their own rules and switches; on the token endpoint a queued
  /// fault, else the dialect's rules.
  func answer(_ r: Recorded) -> FakeAnswer {
    if let endpoint = loginEndpointAnswer(r) { return endpoint }
    if let fault = nextFault() {
      if case .delayed(let seconds) = fault { return .delayed(seconds, normalAnswer(r)) }
      return answer(for: fault)
    }
    return normalAnswer(r)
  }

  private func normalAnswer(_ r: Recorded) -> FakeAnswer {
    guard r.method == "POST", r.path == dialect.path else {
      return error(404, code: "not_found", message: "no such endpoint")
    }
    let s = settings
    let basic = "Basic " + Data("\(s.clientID):\(s.clientSecret)".utf8).base64EncodedString()
    if let grant = loginGrantAnswer(r) { return grant }
    switch dialect {
    case .energy:
      guard r.headers["content-type"] == "application/x-www-form-urlencoded" else {
        return wrongDialect("form body")
      }
      guard r.headers["authorization"] == basic else {
        return error(401, code: "invalid_client", message: "bad credentials")
      }
      guard r.form["grant_type"] == "client_credentials", r.form["client_secret"] == nil else {
        return wrongDialect("grant_type=client_credentials only")
      }
      return issue(refresh: false, scope: r.form["scope"])
    case .powernaut:
      guard r.body.isEmpty, r.headers["content-type"] == nil else { return wrongDialect("an empty body") }
      guard r.headers["accept"] == "application/json" else { return wrongDialect("Accept: application/json") }
      guard r.headers["authorization"] == basic else {
        return error(401, code: "UNAUTHORIZED", message: "bad credentials")
      }
      return issue(refresh: false, scope: nil)
    case .powerverse:
      guard r.headers["content-type"] == "application/json", r.headers["authorization"] == nil else {
        return wrongDialect("a JSON body and no Authorization header")
      }
      let j = r.json
      guard j["client_id"] == s.clientID else {
        return error(401, code: "UNAUTHORIZED", message: "unknown client")
      }
      switch j["grant_type"] {
      case "client_credentials":
        guard j["client_secret"] == s.clientSecret else {
          return error(401, code: "UNAUTHORIZED", message: "bad secret")
        }
        return issue(refresh: true, scope: j["scope"])
      case "password":
        guard j["username"] == s.username, j["password"] == s.password else {
          return error(401, code: "UNAUTHORIZED", message: "Invalid username or password")
        }
        return issue(refresh: true, scope: j["scope"])
      case "refresh_token":
        return refresh(j["refresh_token"] ?? "", scope: j["scope"])
      default:
        return wrongDialect("grant_type password, client_credentials or refresh_token")
      }
    case .placeos:
      guard r.headers["content-type"] == "application/json" else { return wrongDialect("a JSON body") }
      let j = r.json
      guard j["client_id"] == s.clientID else {
        return error(401, code: "invalid_client", message: "unknown client")
      }
      switch j["grant_type"] {
      case "password":
        guard j["username"] == s.username, j["password"] == s.password else {
          return error(400, code: "invalid_grant", message: "bad user")
        }
        return issue(refresh: true, scope: j["scope"] ?? "public")
      case "refresh_token":
        return refresh(j["refresh_token"] ?? "", scope: j["scope"])
      default:
        return wrongDialect("grant_type password")
      }
    case .formPassword:
      guard r.headers["content-type"] == "application/x-www-form-urlencoded" else {
        return wrongDialect("form body")
      }
      guard r.headers["authorization"] == basic else {
        return error(401, code: "invalid_client", message: "bad client")
      }
      let f = r.form
      switch f["grant_type"] {
      case "password":
        guard f["username"] == s.username, f["password"] == s.password else {
          return error(400, code: "invalid_grant", message: "bad user")
        }
        return issue(refresh: true, scope: f["scope"])
      case "refresh_token":
        return refresh(f["refresh_token"] ?? "", scope: f["scope"])
      default:
        return wrongDialect("grant_type password or refresh_token")
      }
    }
  }

  func refresh(_ token: String, scope: String?) -> FakeAnswer {
    let (valid, reused, family) = state.withLockedValue { s -> (Bool, Bool, Int?) in
      if s.login.revoked.contains(token) { return (false, false, nil) }
      if s.validRefresh.contains(token) { return (true, false, s.login.registerRefresh(token, now: now())) }
      let reused = s.issuedRefresh.contains(token)
      if reused && s.settings.reuseDetection {
        // Reuse of a rotated-out token: revoke the whole family.
        s.revokedRefresh.formUnion(s.validRefresh)
        s.validRefresh.removeAll()
      }
      return (false, reused, nil)
    }
    guard valid else {
      let revoked = state.withLockedValue { $0.login.revoked.contains(token) }
      return error(
        400, code: "invalid_grant",
        message: revoked
          ? "refresh token revoked"
          : reused ? "refresh token reused; family revoked" : "unknown refresh token")
    }
    let rotate = settings.rotateRefreshTokens
    if rotate { state.withLockedValue { _ = $0.validRefresh.remove(token) } }
    return issue(refresh: rotate, scope: scope, family: family)
  }

  /// Issues an access token (and with `refresh` a refresh token) of grant family `family`, a
  /// new family when nil; the tokens are remembered for revocation and introspection.
  func issue(refresh: Bool, scope: String?, family: Int? = nil) -> FakeAnswer {
    let now = self.now()
    let issuer = self.issuer
    let (access, rt, s) = state.withLockedValue { st -> (String, String?, Settings) in
      st.counter += 1
      let n = st.counter
      let exp = Int(now) + st.settings.lifetime
      let family = family ?? st.login.newFamily(scope: scope)
      let grantedScope = scope ?? st.login.familyScope[family]
      var access = "at_\(dialect.rawValue)_\(n)_\(UUID().uuidString.prefix(8))"
      switch st.settings.login.accessTokenFormat {
      case .dialect where dialect == .powernaut || dialect == .powerverse || st.settings.jwtExpiryOnly,
        .opaque where st.settings.jwtExpiryOnly:
        access = Self.jwt(exp: exp, n: n)
      case .dialect, .opaque:
        break
      case .jwt:
        access = Self.accessJWT(
          issuer: issuer, settings: st.settings, scope: grantedScope, iat: Int(now), exp: exp, n: n)
      }
      st.issuedAccess.append(access)
      st.login.tokens[access] = IssuedToken(
        kind: .access, family: family, scope: grantedScope, issuedAt: now, expiresAt: Double(exp))
      var rt: String?
      if refresh {
        rt = "rt_\(n)_\(UUID().uuidString.prefix(12))"
        st.issuedRefresh.append(rt!)
        st.validRefresh.insert(rt!)
        st.login.tokens[rt!] = IssuedToken(
          kind: .refresh, family: family, scope: grantedScope, issuedAt: now, expiresAt: nil)
      }
      return (access, rt, st.settings)
    }
    var o: [String: Any] = ["access_token": access, "token_type": dialect == .placeos ? "bearer" : "Bearer"]
    if !s.jwtExpiryOnly { o["expires_in"] = s.expiresInAsString ? "\(s.lifetime)" as Any : s.lifetime as Any }
    if let rt { o["refresh_token"] = rt }
    if let scope { o["scope"] = scope }
    if dialect == .placeos { o["created_at"] = Int(now) }
    let body = try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
    return .respond(status: 200, headers: ["Content-Type": "application/json"], body: Array(body))
  }

  static func jwt(exp: Int, n: Int) -> String {
    func b64(_ s: String) -> String {
      Data(s.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
    return b64(#"{"alg":"RS256","typ":"JWT"}"#) + "." + b64(#"{"sub":"svc_\#(n)","exp":\#(exp)}"#)
      + ".sig\(n)"
  }

  func wrongDialect(_ expected: String) -> FakeAnswer {
    error(400, code: "invalid_request", message: "this endpoint expects \(expected)")
  }

  func error(_ status: Int, code: String, message: String) -> FakeAnswer {
    let body: String
    if dialect == .powerverse || dialect == .powernaut {
      body = #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#
    } else {
      body = #"{"error":"\#(code)","error_description":"\#(message)"}"#
    }
    return .respond(status: status, headers: ["Content-Type": "application/json"], body: Array(body.utf8))
  }

  func answer(for fault: Fault) -> FakeAnswer {
    switch fault {
    case .status(let code, let body, let headers):
      return .respond(status: code, headers: headers, body: Array(body.utf8))
    case .stall: return .stall
    case .slowBody(let interval):
      return .slowBody(interval: interval, body: Array(#"{"access_token":"slow","expires_in":3600}"#.utf8))
    case .oversized(let n):
      return .respond(
        status: 200, headers: ["Content-Type": "application/json"], body: [UInt8](repeating: 0x20, count: n))
    case .malformedJSON:
      return .respond(
        status: 200, headers: ["Content-Type": "application/json"], body: Array(#"{"access_token": "x""#.utf8)
      )
    case .redirect(let to):
      return .respond(status: 307, headers: ["Location": to], body: [])
    case .invalidGrant:
      return error(400, code: "invalid_grant", message: "The refresh token is invalid")
    case .invalidClient:
      return error(401, code: "invalid_client", message: "Client authentication failed")
    case .delayed:
      return error(500, code: "server_error", message: "unreachable")
    }
  }
}

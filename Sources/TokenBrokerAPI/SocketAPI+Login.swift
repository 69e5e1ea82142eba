import NIOHTTP1
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer

/// The login, logout and inspection endpoints of README "The socket API".
extension SocketAPI {
  /// Longest `wait` of `GET .../login?wait=S`.
  static let maxLoginWait = 300

  func loginStatus(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: name, admin: true) }
    guard let engine = broker.engine(named: name) else { return unknownProvider(name) }
    var wait = 0
    if let w = request.query["wait"] {
      guard let n = Int(w), (0...Self.maxLoginWait).contains(n) else {
        return error(
          .badRequest, "bad_request", "wait must be whole seconds between 0 and \(Self.maxLoginWait)")
      }
      wait = n
    }
    let view = wait > 0 ? await engine.waitForLogin(seconds: Double(wait)) : await engine.loginView()
    return ServerResponse(status: .ok, headers: Self.noStore, body: view.json() + [0x0A])
  }

  func startLogin(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: name, admin: true) }
    guard let engine = broker.engine(named: name) else { return unknownProvider(name) }
    let body = request.body.isEmpty ? JSONValue.object([]) : JSONValue.parse(request.body)
    guard let body, body.object != nil else {
      return error(.badRequest, "bad_request", #"the body must be a JSON object, e.g. {"method":"browser"}"#)
    }
    switch body["method"]?.string ?? "browser" {
    case "browser":
      if let r = body["redirect_uri"], r.string == nil {
        return error(.badRequest, "bad_request", "redirect_uri must be a string")
      }
      switch await engine.startBrowserLogin(redirectURI: body["redirect_uri"]?.string) {
      case .failure(let refusal): return loginRefusal(refusal)
      case .success(let (view, url)):
        var w = JSONWriter.Object()
        w.field("provider", name)
        w.field("method", "browser")
        w.field("authorization_url", url)
        w.field("redirect_uri", view.loginRedirectURI)
        w.field("expires_in", view.expiresIn)
        return ServerResponse(
          status: .ok, headers: Self.noStore, body: w.finished() + [0x0A])
      }
    case "device":
      switch await engine.startDeviceLogin() {
      case .failure(let refusal): return loginRefusal(refusal)
      case .success(let view):
        var w = JSONWriter.Object()
        w.field("provider", name)
        w.field("method", "device")
        w.field("verification_uri", view.verificationURI)
        if let complete = view.verificationURIComplete { w.field("verification_uri_complete", complete) }
        w.field("user_code", view.userCode)
        w.field("expires_in", view.expiresIn)
        w.field("interval", view.interval)
        return ServerResponse(
          status: .ok, headers: Self.noStore, body: w.finished() + [0x0A])
      }
    case let other:
      return error(.badRequest, "bad_request", "method \(Self.truncated(other)) is not browser or device")
    }
  }

  func completeLogin(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: name, admin: true) }
    guard let engine = broker.engine(named: name) else { return unknownProvider(name) }
    guard let body = JSONValue.parse(request.body), body.object != nil else {
      return error(
        .badRequest, "bad_request",
        #"the body must be a JSON object: {"redirect_url":URL} or {"code","state"}"#)
    }
    let response: AuthorizationResponse?
    if let url = body["redirect_url"]?.string {
      response = AuthorizationResponse.parse(redirectURL: url)
    } else if body["code"]?.string != nil || body["error"]?.string != nil {
      response = AuthorizationResponse(
        code: body["code"]?.string, state: body["state"]?.string, error: body["error"]?.string,
        errorDescription: body["error_description"]?.string)
    } else {
      response = nil
    }
    guard let response else {
      return error(
        .badRequest, "bad_request",
        "the address holds neither a code nor an error; paste the whole address the browser ended on")
    }
    switch await engine.completeLogin(response) {
    case .failure(let refusal): return loginRefusal(refusal)
    case .success(let status):
      return ServerResponse(status: .ok, body: status.json(now: broker.environment.clock.now()) + [0x0A])
    }
  }

  func logout(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard isAdmin(request) else { return denied(request, provider: name, admin: true) }
    guard let engine = broker.engine(named: name) else { return unknownProvider(name) }
    switch await engine.logout() {
    case .failure(let refusal): return loginRefusal(refusal)
    case .success(let (status, revoked)):
      var json = status.json(now: broker.environment.clock.now())
      json.removeLast()
      json += Array(#","revoked":\#(revoked)}"#.utf8)
      return ServerResponse(status: .ok, body: json + [0x0A])
    }
  }

  func tokenInfo(_ request: ServerRequest, provider name: String) async -> ServerResponse {
    guard authorised(request, provider: name) else { return denied(request, provider: name) }
    guard let provider = broker.servingView(provider: name).provider else { return unknownProvider(name) }
    let query: TokenQuery
    do { query = try parseTokenRequest(request, provider: provider) } catch {
      return self.error(.badRequest, error.code, error.message)
    }
    switch await provider.engine.inspect(scopes: query.scopes) {
    case .success(let info):
      return ServerResponse(
        status: .ok, headers: Self.noStore, body: info.json(provider: name) + [0x0A])
    case .failure(let failure):
      return serveFailure(failure)
    }
  }

  /// The answer to a refused login request: 400 for what the operator must redo, 502 when
  /// the provider failed.
  func loginRefusal(_ refusal: ProviderEngine.Refusal) -> ServerResponse {
    let status: HTTPResponseStatus = refusal.code == "upstream_error" ? .badGateway : .badRequest
    return error(status, refusal.code, refusal.message)
  }
}

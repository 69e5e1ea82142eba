/// One provider's pending login as a pure state machine (README "Logging in"): a browser
/// login (authorization code + PKCE) or a device login (RFC 8628), from its start to the
/// exchange that brings the refresh token. Randomness and `now` come in with the events;
/// the exchange itself goes through the provider's `RefreshStateMachine`, so it is one
/// upstream request at a time per credential like every other.
package struct LoginStateMachine: Sendable {
  package enum Method: String, Sendable, Equatable {
    case browser, device
  }

  package enum Status: String, Sendable, Equatable {
    case none, pending, exchanging, done, denied, expired, failed
  }

  /// Why a completion was refused; `code` is the API's error code.
  package struct Refusal: Error, Sendable, Equatable {
    package var code: String
    package var message: String

    package init(code: String, message: String) {
      self.code = code
      self.message = message
    }
  }

  package enum Action: Sendable, Equatable {
    /// Send this exchange through the refresh machine (`RefreshStateMachine.loginWanted`).
    case exchange(RequestGrant)
    /// Poll the device login at `at` (report with `pollDue`).
    case schedulePoll(at: Double)
    case cancelPoll
  }

  /// How long a browser login waits for its completion.
  package static let browserLifetime: Double = 600

  package struct Login: Sendable, Equatable {
    package var id: Int
    package var method: Method
    package var status: Status
    package var expiresAt: Double
    package var message: String?
    // Browser
    package var state: String?
    package var verifier: String?
    package var redirectURI: String?
    package var nonce: String?
    // Device
    package var device: DeviceAuthorization?
    package var interval: Double = 5
  }

  package private(set) var current: Login?
  private var nextID = 0
  let name: String

  package init(name: String) { self.name = name }

  /// The status to report now: a pending login past its expiry is `expired`.
  package func status(now: Double) -> Status {
    guard let c = current else { return .none }
    if c.status == .pending, now >= c.expiresAt { return .expired }
    return c.status
  }

  /// Whether a login waits for the user (the provider's state is then `login_pending`).
  package func isWaiting(now: Double) -> Bool {
    let s = status(now: now)
    return s == .pending || s == .exchanging
  }

  // MARK: Browser

  /// A new browser login; it replaces any other. Returns the login (its state and verifier
  /// are for the authorization URL).
  package mutating func startBrowser(
    state: String, verifier: String, nonce: String?, redirectURI: String, now: Double
  ) -> (Login, [Action]) {
    let cancel: [Action] = current?.method == .device ? [.cancelPoll] : []
    nextID += 1
    let login = Login(
      id: nextID, method: .browser, status: .pending, expiresAt: now + Self.browserLifetime, state: state,
      verifier: verifier, redirectURI: redirectURI, nonce: nonce)
    current = login
    return (login, cancel)
  }

  /// The browser came back: check it and exchange the code.
  package mutating func complete(_ response: AuthorizationResponse, now: Double) -> Result<[Action], Refusal>
  {
    guard var c = current, c.method == .browser else {
      return .failure(
        Refusal(
          code: "no_login", message: "no browser login of \(name) is pending; run tokenctl login \(name)"))
    }
    switch status(now: now) {
    case .pending: break
    case .expired:
      c.status = .expired
      c.message = "the login expired; run tokenctl login \(name) again"
      current = c
      return .failure(Refusal(code: "login_expired", message: c.message!))
    case .exchanging:
      return .failure(Refusal(code: "bad_request", message: "this login is already being completed"))
    default:
      return .failure(
        Refusal(
          code: "no_login", message: "no browser login of \(name) is pending; run tokenctl login \(name)"))
    }
    // RFC 6749 section 10.12: an answer without our state, or with another, is not ours.
    guard let state = response.state, Self.constantTimeEqual(state, c.state ?? "") else {
      return .failure(
        Refusal(
          code: "invalid_state",
          message:
            "the state in the address does not match the login in progress (an old or foreign login); run tokenctl login \(name) again"
        ))
    }
    if let error = response.error {
      c.status = error == "access_denied" ? .denied : .failed
      c.message =
        "the authorization server answered \(error)"
        + (response.errorDescription.map { ": \(Self.printable($0))" } ?? "")
      current = c
      return .failure(
        Refusal(code: error == "access_denied" ? "access_denied" : "login_failed", message: c.message!))
    }
    guard let code = response.code, !code.isEmpty else {
      return .failure(Refusal(code: "bad_request", message: "the address holds no code"))
    }
    c.status = .exchanging
    current = c
    return .success([
      .exchange(.authorizationCode(code: code, verifier: c.verifier ?? "", redirectURI: c.redirectURI ?? ""))
    ])
  }

  // MARK: Device

  /// The device authorization request was answered: poll at its interval.
  package mutating func deviceStarted(_ device: DeviceAuthorization, now: Double) -> (Login, [Action]) {
    nextID += 1
    let login = Login(
      id: nextID, method: .device, status: .pending, expiresAt: now + device.expiresIn, device: device,
      interval: device.interval)
    current = login
    return (login, [.cancelPoll, .schedulePoll(at: now + device.interval)])
  }

  /// A poll is due: send the device code, or give up once it expired.
  package mutating func pollDue(now: Double) -> [Action] {
    guard var c = current, c.method == .device, c.status == .pending, let device = c.device else { return [] }
    if now >= c.expiresAt {
      c.status = .expired
      c.message = "the device code expired before it was approved; run tokenctl login \(name) --device again"
      current = c
      return []
    }
    c.status = .exchanging
    current = c
    return [.exchange(.deviceCode(device.deviceCode))]
  }

  /// The exchange ended (`failure` nil: the refresh token is persisted and served).
  package mutating func exchanged(_ failure: UpstreamFailure?, now: Double) -> [Action] {
    guard var c = current, c.status == .exchanging else { return [] }
    guard let failure else {
      c.status = .done
      c.message = nil
      c.verifier = nil
      c.device = c.device.map { d in
        var d = d
        d.deviceCode = ""
        return d
      }
      current = c
      return []
    }
    if c.method == .device {
      // RFC 8628 section 3.5.
      switch failure.code {
      case "authorization_pending":
        c.status = .pending
        current = c
        return [.schedulePoll(at: now + c.interval)]
      case "slow_down":
        c.interval += 5
        c.status = .pending
        current = c
        return [.schedulePoll(at: now + c.interval)]
      case "access_denied":
        c.status = .denied
        c.message = "the login was denied at \(c.device?.verificationURI ?? "the verification page")"
      case "expired_token":
        c.status = .expired
        c.message =
          "the device code expired before it was approved; run tokenctl login \(name) --device again"
      default:
        if failure.kind == .retryLater, failure.status == nil || (failure.status ?? 0) >= 500 {
          // The network or the server failed this poll; the login itself still stands.
          c.status = .pending
          current = c
          return [.schedulePoll(at: now + c.interval)]
        }
        c.status = .failed
        c.message = "the device login failed: \(failure.description)"
      }
      current = c
      return []
    }
    c.status = failure.code == "access_denied" ? .denied : .failed
    c.message = "the code exchange failed: \(failure.description)"
    current = c
    return []
  }

  /// Forget the login (a logout, a changed credential).
  package mutating func cancel() -> [Action] {
    guard current != nil else { return [] }
    current = nil
    return [.cancelPoll]
  }

  // MARK: Helpers

  static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
  }

  /// An upstream's text cut to 200 visible characters (it is shown to the operator).
  package static func printable(_ s: String) -> String {
    String(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(200).map(Character.init))
  }
}

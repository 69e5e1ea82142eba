import TokenBrokerClient
import TokenBrokerJSON

#if canImport(Glibc)
  import Glibc
#endif

/// `tokenctl login NAME [--device] [--paste]` and `tokenctl logout NAME` (README "Logging in
/// on a headless server"). tokenctl carries only the address the browser ended on (or waits
/// for a device login): the daemon holds the PKCE verifier, checks `state`, exchanges the code
/// and keeps the refresh token, which never passes through here.
enum Login {
  static func path(_ name: String) -> String { "/v1/providers/\(escapePath(name))/login" }

  /// The browser flow: a listener on the loopback redirect URI, or (`paste`) only stdin.
  static func browser(_ socket: String, name: String, paste: Bool) {
    var listener: LoopbackListener?
    var redirect: RedirectURI?
    if !paste {
      let info = json(call(socket, "GET", path(name)))
      if let methods = info["methods"]?.array?.compactMap(\.string), !methods.contains("browser") {
        let device = methods.contains("device") ? "; use 'tokenctl login \(name) --device'" : ""
        fail(
          "\(name) cannot log in with a browser: providers.\(name) has no authorize_url\(device)", Exit.usage)
      }
      let configured = info["redirect_uri"]?.string ?? "http://127.0.0.1/callback"
      if let uri = RedirectURI(configured), uri.isLoopback {
        let opened = LoopbackListener.open(port: uri.port ?? 0)
        listener = opened
        redirect = uri.with(port: opened.port)
      } else {
        say("the redirect URI \(configured) is not on this machine's loopback: tokenctl cannot listen for it")
      }
    }
    var body = JSONWriter.Object()
    body.field("method", "browser")
    if let redirect { body.field("redirect_uri", redirect.text) }
    let started = json(call(socket, "POST", path(name), body: body.finished()))
    guard let url = started["authorization_url"]?.string else {
      fail("unexpected answer from the daemon (no authorization_url)", Exit.failure)
    }
    let expiresIn = Int(started["expires_in"]?.number ?? 600)
    var text =
      "To log in to \(name), open this address in a browser (valid for \(minutes(expiresIn))):\n\n  \(url)\n\n"
    if let listener, let redirect {
      text += """
        The browser comes back to \(redirect.text), where tokenctl is listening.
        If the browser runs on another machine, run this on the machine with the browser first:

          ssh -L \(listener.port):127.0.0.1:\(listener.port) \(hostName())

        or paste the address your browser ended on, then press Enter:
        """
    } else {
      text +=
        "Then paste the address your browser ended on (it fails to load; copy it anyway), then press Enter:"
    }
    say(text)
    var wait = RedirectWait(listener: listener, path: redirect?.path ?? "")
    let deadline = monotonicMilliseconds() + Int64(expiresIn) * 1000
    while true {
      switch wait.next(until: deadline) {
      case .timedOut:
        fail(
          "the login expired before the browser came back: run 'tokenctl login \(name)' again", Exit.failure)
      case .stdinClosed:
        fail("stdin ended before an address was pasted: run 'tokenctl login \(name)' again", Exit.failure)
      case .pasted(let line):
        guard line.hasPrefix("http://") || line.hasPrefix("https://") else {
          say("paste the whole address, starting with http:// or https://, then press Enter:")
          continue
        }
        let query = RedirectWait.split(line).query
        guard RedirectWait.hasParameter("code", in: query) || RedirectWait.hasParameter("error", in: query)
        else {
          say("that address has no code= (or error=): paste the one the browser ended on after the login:")
          continue
        }
        complete(socket, name: name, redirectURL: line, browser: nil)
      case .browser(let target, let connection):
        complete(socket, name: name, redirectURL: redirect!.origin + target, browser: connection)
      }
    }
  }

  /// Hands the address to the daemon, answers the browser (when it is waiting) and exits.
  static func complete(_ socket: String, name: String, redirectURL: String, browser: Int32?) -> Never {
    var body = JSONWriter.Object()
    body.field("redirect_url", redirectURL)
    switch send(socket, "POST", path(name) + "/complete", body: body.finished()) {
    case .success(let response):
      if let browser {
        LoopbackListener.answer(
          browser, status: "200 OK",
          html: LoopbackListener.page("\(name): logged in. You can close this tab."))
      }
      let entry = json(response)
      say("\(name): logged in")
      out(StatusTable.render([entry]))
      exit(Exit.ok)
    case .failure(let failure):
      if let browser {
        LoopbackListener.answer(
          browser, status: "200 OK",
          html: LoopbackListener.page(
            "\(name): the login failed (\(failure.text)). You can close this tab; tokenctl says what to do."))
      }
      let again = ["invalid_state", "login_expired", "no_login", "access_denied"].contains(failure.code)
      fail(failure.text + (again ? "\nrun 'tokenctl login \(name)' to try again" : ""), failure.exit)
    }
  }

  /// The device flow (RFC 8628): show the code, then wait while the daemon polls. A device
  /// login that is still pending (tokenctl was stopped) is shown again instead of replaced.
  static func device(_ socket: String, name: String) {
    let current = json(call(socket, "GET", path(name)))
    var login = current
    if current["status"]?.string == "pending", current["method"]?.string == "device",
      current["user_code"]?.string != nil
    {
      say("a device login for \(name) is already waiting; showing it again")
    } else {
      if let methods = current["methods"]?.array?.compactMap(\.string), !methods.contains("device") {
        let browser = methods.contains("browser") ? "; use 'tokenctl login \(name)'" : ""
        fail(
          "\(name) cannot log in by device: providers.\(name) has no device_authorization_url\(browser)",
          Exit.usage)
      }
      var body = JSONWriter.Object()
      body.field("method", "device")
      login = json(call(socket, "POST", path(name), body: body.finished()))
    }
    guard let uri = login["verification_uri"]?.string, let code = login["user_code"]?.string else {
      fail("unexpected answer from the daemon (no verification_uri or user_code)", Exit.failure)
    }
    let expiresIn = Int(login["expires_in"]?.number ?? 600)
    var text =
      "To log in to \(name), open on any device with a browser:\n\n  \(uri)\n\nand enter the code:  \(code)\n"
    if let complete = login["verification_uri_complete"]?.string {
      text += "\n(or open \(complete), which carries the code)\n"
    }
    text +=
      "\nWaiting for the approval (the code is valid for \(minutes(expiresIn))). Stopping tokenctl "
      + "does not stop the login: 'tokenctl login \(name) --device' shows it again."
    say(text)
    let wait = 30
    while true {
      let state = json(call(socket, "GET", path(name) + "?wait=\(wait)", timeout: wait + 15))
      if let method = state["method"]?.string, method != "device" {
        fail("another login of \(name) replaced this one", Exit.failure)
      }
      let why = state["message"]?.string.map { ": \($0)" } ?? ""
      switch state["status"]?.string ?? "" {
      case "pending", "exchanging": continue
      case "done":
        say("\(name): logged in")
        let providers = json(call(socket, "GET", "/v1/status"))["providers"]?.array ?? []
        let entries = providers.filter { $0["name"]?.string == name }
        if !entries.isEmpty { out(StatusTable.render(entries)) }
        exit(Exit.ok)
      case "denied": fail("the login of \(name) was denied\(why)", Exit.failure)
      case "expired":
        fail(
          "the code expired before it was approved\(why): run 'tokenctl login \(name) --device' again",
          Exit.failure)
      case "failed": fail("the login of \(name) failed\(why)", Exit.failure)
      default:
        fail(
          "no login of \(name) is waiting any more (token-brokerd restarted?): "
            + "run 'tokenctl login \(name) --device' again", Exit.failure)
      }
    }
  }

  static func minutes(_ seconds: Int) -> String {
    seconds < 120 ? "\(seconds) s" : "\(seconds / 60) min"
  }

  static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "THIS-HOST" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

/// `tokenctl logout NAME`: the daemon revokes the refresh token (when the provider has a
/// revocation_url) and forgets it; the provider is then in `needs_login`.
func logout(_ socket: String, name: String) {
  let entry = json(call(socket, "POST", "/v1/providers/\(escapePath(name))/logout"))
  if entry["revoked"]?.bool == true {
    say("\(name): logged out; the refresh token was revoked at the provider and forgotten")
  } else {
    say(
      "\(name): logged out; the refresh token was forgotten but not revoked "
        + "(providers.\(name) has no revocation_url)")
  }
  out(StatusTable.render([entry]))
}

/// A redirect URI as far as tokenctl needs it: `http://HOST[:PORT]/PATH`.
struct RedirectURI {
  var scheme: String
  var host: String
  var port: Int?
  var path: String

  init?(_ text: String) {
    let parts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2 else { return nil }
    scheme = parts[0].lowercased()
    let rest: Substring = parts[1]
    let authorityEnd = rest.firstIndex { c in c == "/" || c == "?" || c == "#" } ?? rest.endIndex
    let authority = rest[..<authorityEnd]
    path = RedirectWait.split(String(rest[authorityEnd...])).path
    if path.isEmpty { path = "/" }
    if authority.hasPrefix("[") {
      host = String(authority)
      port = nil
      return
    }
    if let colon = authority.lastIndex(of: ":") {
      guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
        return nil
      }
      host = String(authority[..<colon]).lowercased()
      port = p
    } else {
      host = String(authority).lowercased()
    }
  }

  /// An address tokenctl can listen on: plain http to 127.0.0.1 or localhost (RFC 8252 7.3).
  var isLoopback: Bool { scheme == "http" && (host == "127.0.0.1" || host == "localhost") }

  func with(port: Int) -> RedirectURI {
    var copy = self
    copy.port = port
    return copy
  }

  var origin: String { "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "") }
  var text: String { origin + path }
}

import Foundation
import Glibc
import TokenBrokerTestSupport

/// A real OAuth 2 authorization server on 127.0.0.1 for the system tests: django-oauth-toolkit
/// (the Django project in `AuthorizationServer/` next to this file) served by gunicorn on a
/// free port, with a SQLite database of its own in a fresh temporary directory. Its settings:
/// PKCE required, refresh tokens rotated on every use, an old refresh token replayed revokes
/// its whole family, RFC 7009 revocation, RFC 7662 introspection.
///
/// It holds one user (``username``, ``password``: typed into its real login form by
/// ``approve(authorizationURL:)``), a confidential client (``clientID``, ``clientSecret``:
/// authorization code and refresh, `client_secret_post` or HTTP Basic, registered redirect URI
/// `http://127.0.0.1/callback`, any port allowed as RFC 8252 7.3 says) and a resource server's
/// client for introspection. Python and its packages come from the venv that
/// `make oauth-server-deps` makes (`.build/oauth-venv`, or `$TOKEN_BROKER_OAUTH_VENV`).
///
/// The server is stopped when the fixture is released.
final class AuthorizationServerFixture: Sendable {
  /// `http://127.0.0.1:PORT`
  let baseURL: String
  let port: Int
  let username: String
  let password: String
  let clientID: String
  let clientSecret: String
  /// The registered redirect URI: `http://127.0.0.1/callback` (no port: any port is accepted).
  let redirectURI: String
  /// A confidential client allowed to call ``introspectURL`` (any client's credentials are;
  /// this one stands for a resource server).
  let introspectionClientID: String
  let introspectionClientSecret: String
  /// How long (s) the server waited for the database to be made and the server to answer.
  let startSeconds: Double

  var authorizeURL: String { baseURL + "/o/authorize/" }
  var tokenURL: String { baseURL + "/o/token/" }
  var revokeURL: String { baseURL + "/o/revoke_token/" }
  var introspectURL: String { baseURL + "/o/introspect/" }
  var loginURL: String { baseURL + "/accounts/login/" }

  private let directory: TempDirectory
  private let server: ChildProcess

  /// The Django project, next to this file.
  static let projectDirectory =
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
    + "/AuthorizationServer"

  /// The venv's python: `$TOKEN_BROKER_OAUTH_VENV/bin/python` or the package's
  /// `.build/oauth-venv/bin/python`.
  static var python: String {
    get throws {
      let venv =
        ProcessInfo.processInfo.environment["TOKEN_BROKER_OAUTH_VENV"].flatMap { $0.isEmpty ? nil : $0 }
        ?? URL(fileURLWithPath: projectDirectory).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/.build/oauth-venv"
      let python = venv + "/bin/python"
      guard access(python, X_OK) == 0 else {
        throw SetupError(
          "no Python venv for the test authorization server at \(venv): run `make oauth-server-deps` "
            + "(needs PyPI) or set TOKEN_BROKER_OAUTH_VENV")
      }
      return python
    }
  }

  /// Makes the database, starts the server and waits (bounded) until its login page answers.
  /// `accessTokenSeconds` is the lifetime of the access tokens it issues.
  init(accessTokenSeconds: Int = 3600, within seconds: Double = 60) throws {
    let started = monotonic()
    let python = try Self.python
    directory = try TempDirectory("tbdot")
    let environment = ChildProcess.minimalEnvironment([
      "TB_OAUTH_DB": directory.file("db.sqlite3"),
      "TB_OAUTH_ACCESS_TOKEN_SECONDS": String(accessTokenSeconds),
      "PYTHONDONTWRITEBYTECODE": "1",
      "HOME": directory.path,
    ])

    let bootstrap = try ChildProcess.run(
      python, [Self.projectDirectory + "/bootstrap.py"], environment: environment, within: seconds)
    guard bootstrap.status == 0,
      let made = try? JSONSerialization.jsonObject(with: Data(bootstrap.stdout.utf8)) as? [String: String],
      let username = made["username"], let password = made["password"], let clientID = made["client_id"],
      let clientSecret = made["client_secret"], let redirectURI = made["redirect_uri"],
      let introspectionClientID = made["introspection_client_id"],
      let introspectionClientSecret = made["introspection_client_secret"]
    else {
      throw SetupError(
        "bootstrap.py failed (exit \(bootstrap.status)): \(bootstrap.stderr.suffix(2000)) \(bootstrap.stdout)"
      )
    }
    (self.username, self.password, self.clientID, self.clientSecret) = (
      username, password, clientID, clientSecret
    )
    (self.redirectURI, self.introspectionClientID) = (redirectURI, introspectionClientID)
    self.introspectionClientSecret = introspectionClientSecret

    // Port 0: the kernel picks a free port, and gunicorn prints the one it got.
    let server = try ChildProcess(
      python,
      [
        "-m", "gunicorn", "--chdir", Self.projectDirectory, "--bind", "127.0.0.1:0", "--workers", "1",
        "--worker-class", "gthread", "--threads", "8", "--no-control-socket", "--graceful-timeout", "5",
        "wsgi:application",
      ], environment: environment, outputIn: directory, name: "authorization-server")
    try server.start()
    do {
      (port, baseURL) = try Self.waitUntilServing(server, within: seconds)
    } catch {
      server.stop(SIGQUIT, within: 5)
      throw error
    }
    self.server = server
    startSeconds = monotonic() - started
  }

  /// Waits for gunicorn's "Listening at: http://127.0.0.1:PORT" and then for its worker to
  /// answer the login page with 200; the port and the base URL.
  private static func waitUntilServing(_ server: ChildProcess, within seconds: Double) throws -> (Int, String)
  {
    var port = 0
    try poll("gunicorn to listen (log: \(server.stderrPath))", within: seconds) {
      guard server.isRunning else {
        throw SetupError("gunicorn exited (\(server.wait())): \(server.stderrTail(20))")
      }
      guard let line = server.stderr.split(separator: "\n").first(where: { $0.contains("Listening at: ") }),
        let url = line.split(separator: " ").first(where: { $0.hasPrefix("http://127.0.0.1:") }),
        let p = Int(url.dropFirst("http://127.0.0.1:".count))
      else { return false }
      port = p
      return true
    }
    let baseURL = "http://127.0.0.1:\(port)"
    // The worker imports Django after the listener is up: wait for a real answer.
    let loginURL = baseURL + "/accounts/login/"
    try poll("the authorization server's login page", within: seconds) {
      guard server.isRunning else { throw SetupError("gunicorn exited: \(server.stderrTail(20))") }
      return (try? LoopbackHTTP.send("GET", loginURL))?.status == 200
    }
    return (port, baseURL)
  }

  deinit { server.stop(SIGQUIT, within: 10) }

  /// What gunicorn and Django wrote on stderr (warnings and errors), for failure messages.
  var serverLog: String { server.stderr }

  /// Plays the browser on `authorizationURL` with the real forms: opens it (redirected to the
  /// login page), signs in as ``username`` with the CSRF token and cookie, is sent back to the
  /// authorization page, and submits its consent form with every hidden input and
  /// `allow=Authorize`. The address the server then redirects to (the client's redirect URI
  /// with `code` and `state`, or with `error`), not followed.
  func approve(authorizationURL: String) throws -> String {
    try consent(authorizationURL, allow: true)
  }

  /// As ``approve(authorizationURL:)``, but the person clicks Cancel: the redirect carries
  /// `error=access_denied`.
  func deny(authorizationURL: String) throws -> String {
    try consent(authorizationURL, allow: false)
  }

  /// RFC 7662 introspection of `token` with the resource server's credentials (HTTP Basic):
  /// the JSON answer (`active`, and when active `scope`, `client_id`, `username`, `exp`).
  func introspect(token: String) throws -> [String: Any] {
    let response = try LoopbackHTTP.postForm(
      introspectURL, [("token", token)], basic: (introspectionClientID, introspectionClientSecret))
    guard response.status == 200 else { throw SetupError("introspection: \(response)") }
    return try response.json()
  }

  /// `introspect(token:)["active"]`, which must be a JSON boolean.
  func isActive(_ token: String) throws -> Bool {
    guard let active = try introspect(token: token)["active"] as? Bool else {
      throw SetupError("introspection without a boolean \"active\"")
    }
    return active
  }

  private func consent(_ authorizationURL: String, allow: Bool) throws -> String {
    let browser = BrowserSession()
    // Opening the authorization URL: not signed in, so redirected to the login form.
    var (url, page) = try open(authorizationURL, in: browser)
    if (300..<400).contains(page.status), let location = page.header("location") {
      return try BrowserSession.resolve(location, against: url)  // refused before any login
    }
    guard let login = HTMLForm.all(in: page.text).first(where: { $0.inputNames.contains("password") }) else {
      throw SetupError("no login form at \(url): \(page)")
    }
    var fields = login.fields.filter { $0.name != "username" && $0.name != "password" }
    fields += [("username", username), ("password", password)]
    let loginAction = try BrowserSession.resolve(login.action ?? url, against: url)
    let signedIn = try browser.send("POST", loginAction, form: fields.map { ($0.name, $0.value) })
    guard (300..<400).contains(signedIn.status), let next = signedIn.header("location") else {
      throw SetupError("sign-in refused at \(loginAction): \(signedIn)")
    }
    // Back to the authorization page, now with its consent form.
    (url, page) = try open(try BrowserSession.resolve(next, against: loginAction), in: browser)
    guard let form = HTMLForm.all(in: page.text).first(where: { $0.inputNames.contains("allow") }) else {
      if (300..<400).contains(page.status), let location = page.header("location") {
        return try BrowserSession.resolve(location, against: url)  // an error redirected at once
      }
      throw SetupError(
        "no consent form at \(url): HTTP \(page.status) \(Self.errorText(page.text) ?? page.text)")
    }
    var consent = form.fields.map { ($0.name, $0.value) }
    if allow { consent.append(("allow", "Authorize")) }
    let action = try BrowserSession.resolve(
      form.action.flatMap { $0.isEmpty ? nil : $0 } ?? url, against: url)
    let decided = try browser.send("POST", action, form: consent)
    guard (300..<400).contains(decided.status), let location = decided.header("location") else {
      throw SetupError("the consent form was not answered with a redirect: \(decided)")
    }
    return try BrowserSession.resolve(location, against: action)
  }

  /// The words of django-oauth-toolkit's error page (`<h2>Error: E</h2> <p>DESCRIPTION</p>`),
  /// tags dropped: "Error: invalid_request Mismatching redirect URI."
  static func errorText(_ html: String) -> String? {
    guard let start = html.range(of: "<h2>Error:"), let end = html[start.lowerBound...].range(of: "</p>")
    else {
      return nil
    }
    var text = ""
    var inTag = false
    for c in html[start.lowerBound..<end.lowerBound] {
      if c == "<" { inTag = true } else if c == ">" { inTag = false } else if !inTag { text.append(c) }
    }
    return HTMLForm.decodeEntities(text.split(whereSeparator: \.isWhitespace).joined(separator: " "))
  }

  /// GETs `url`, following redirects while they stay on this server; the last URL and its
  /// answer (a page, or a redirect that leaves the server: the client's redirect URI).
  private func open(_ url: String, in browser: BrowserSession) throws -> (String, LoopbackHTTP.Response) {
    var url = url
    for _ in 0..<10 {
      let response = try browser.send("GET", url)
      guard (300..<400).contains(response.status), let location = response.header("location") else {
        return (url, response)
      }
      let next = try BrowserSession.resolve(location, against: url)
      guard BrowserSession.origin(of: next) == baseURL else { return (url, response) }
      url = next
    }
    throw SetupError("more than 10 redirects from \(url)")
  }
}

import TokenBrokerClient
import TokenBrokerJSON

#if canImport(Glibc)
  import Glibc
#endif

/// Exit codes of README "tokenctl".
enum Exit {
  static let ok: Int32 = 0
  static let failure: Int32 = 1
  static let usage: Int32 = 64
  static let unreachable: Int32 = 69
  static let unavailable: Int32 = 75
  static let forbidden: Int32 = 77
}

/// The socket: `--socket`, else `$TOKEN_BROKER_SOCKET`, else `/run/token-broker.sock`.
func socketPath(_ option: String?) -> String {
  if let option { return option }
  if let env = getenv("TOKEN_BROKER_SOCKET"), env.pointee != 0 { return String(cString: env) }
  return "/run/token-broker.sock"
}

@main
enum Tokenctl {
  static func main() {
    let invocation: Invocation
    do {
      invocation = try Invocation.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
      fail("\(error.message)\nsee 'tokenctl --help'", Exit.usage)
    }
    let socket = socketPath(invocation.socket)
    switch invocation.command {
    case .token(let name, let scope, let minValid, let json):
      token(socket, name: name, scope: scope, minValid: minValid, json: json)
    case .header(let name, let scope): header(socket, name: name, scope: scope)
    case .status(let json): status(socket, json: json)
    case .refresh(let name): refresh(socket, name: name)
    case .reload: reload(socket)
    case .login(let name, let device, let paste):
      if device { Login.device(socket, name: name) } else { Login.browser(socket, name: name, paste: paste) }
    case .logout(let name): logout(socket, name: name)
    case .inspect(let name, let scope, let json): Inspect.run(socket, name: name, scope: scope, json: json)
    case .help(let command): out(Help.text(for: command))
    case .version: out(Help.version)
    case .completion(let shell): out(Help.completion(shell))
    }
  }
}

/// Prints a message on stderr and exits with `code`.
func fail(_ message: String, _ code: Int32) -> Never {
  say("tokenctl: \(message)")
  Glibc.exit(code)
}

/// A message for the person at the terminal, on stderr (stdout holds only the answer).
func say(_ text: String) {
  let line = text.hasSuffix("\n") ? text : text + "\n"
  _ = line.withCString { write(2, $0, strlen($0)) }
}

func out(_ text: String) {
  let line = text.hasSuffix("\n") ? text : text + "\n"
  _ = line.withCString { write(1, $0, strlen($0)) }
}

/// A request that failed: the daemon's error code (or a word for what went wrong), a
/// sentence, and the exit status of README "tokenctl".
struct CallFailure: Error {
  var code: String
  var message: String
  var exit: Int32
  /// `code: message`, or the sentence alone when the daemon was not reached.
  var text: String { code.isEmpty ? message : "\(code): \(message)" }
}

/// Sends a request; every failure as its exit code and a sentence, for a caller that has
/// something to do before it exits (the login answers the browser first).
func send(
  _ socket: String, _ method: String, _ path: String, accept: String = "application/json",
  body: [UInt8]? = nil, timeout: Int? = nil
) -> Result<UnixHTTPClient.Response, CallFailure> {
  let client = UnixHTTPClient(socketPath: socket)
  let response: UnixHTTPClient.Response
  do {
    response = try client.request(method, path, accept: accept, body: body, timeout: timeout)
  } catch {
    switch error {
    case .unreachable(_, let message):
      return .failure(CallFailure(code: "", message: message, exit: Exit.unreachable))
    case .protocolError(let message):
      return .failure(CallFailure(code: "", message: message, exit: Exit.failure))
    }
  }
  guard response.status == 200 else {
    let json = JSONValue.parse(response.body)
    let code = json?["error"]?["code"]?.string ?? "error"
    var message = json?["error"]?["message"]?.string ?? "status \(response.status)"
    if let problems = json?["error"]?["problems"]?.array {
      message += "\n" + problems.compactMap(\.string).joined(separator: "\n")
    }
    switch response.status {
    case 403: return .failure(CallFailure(code: code, message: message, exit: Exit.forbidden))
    case 503:
      // A retry hint only where waiting helps: not for a configuration that must change.
      let retry =
        code == "misconfigured" ? "" : response.headers["retry-after"].map { " (retry in \($0) s)" } ?? ""
      return .failure(
        CallFailure(
          code: code, message: message + retry,
          exit: code == "misconfigured" ? Exit.failure : Exit.unavailable))
    case 400 where code == "invalid_scope" || code == "bad_request":
      return .failure(CallFailure(code: code, message: message, exit: Exit.usage))
    default: return .failure(CallFailure(code: code, message: message, exit: Exit.failure))
    }
  }
  return .success(response)
}

/// Sends a request; exits with the failure's code and sentence when it fails.
func call(
  _ socket: String, _ method: String, _ path: String, accept: String = "application/json",
  body: [UInt8]? = nil, timeout: Int? = nil
) -> UnixHTTPClient.Response {
  switch send(socket, method, path, accept: accept, body: body, timeout: timeout) {
  case .success(let response): return response
  case .failure(let failure): fail(failure.text, failure.exit)
  }
}

/// The body of a successful answer as JSON; exits when it is not.
func json(_ response: UnixHTTPClient.Response) -> JSONValue {
  guard let value = JSONValue.parse(response.body) else {
    fail("unexpected answer from the daemon", Exit.failure)
  }
  return value
}

func escapePath(_ s: String) -> String {
  var out = ""
  for b in s.utf8 {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
      out.unicodeScalars.append(Unicode.Scalar(b))
    default:
      let hex = Array("0123456789ABCDEF".utf8)
      out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
    }
  }
  return out
}

func token(_ socket: String, name: String, scope: String?, minValid: Int?, json: Bool) {
  var query: [String] = []
  if let scope { query.append("scope=" + escapePath(scope)) }
  if let minValid { query.append("min_valid=\(minValid)") }
  let path = "/v1/token/" + escapePath(name) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
  let r = call(socket, "GET", path, accept: json ? "application/json" : "text/plain")
  out(r.text)
}

func header(_ socket: String, name: String, scope: String?) {
  let query = scope.map { "?scope=" + escapePath($0) } ?? ""
  let r = call(socket, "GET", "/v1/token/" + escapePath(name) + query)
  guard let header = JSONValue.parse(r.body)?["header"]?.string else {
    fail("unexpected answer from the daemon", Exit.failure)
  }
  out(header)
}

func refresh(_ socket: String, name: String) {
  let r = call(socket, "POST", "/v1/providers/\(escapePath(name))/refresh")
  guard let entry = JSONValue.parse(r.body) else { fail("unexpected answer from the daemon", Exit.failure) }
  out(StatusTable.render([entry]))
  if let state = entry["state"]?.string, state != "ok" { Glibc.exit(Exit.unavailable) }
}

func reload(_ socket: String) {
  _ = call(socket, "POST", "/v1/reload")
  out("configuration reloaded")
}

func status(_ socket: String, json: Bool) {
  let r = call(socket, "GET", "/v1/status")
  if json {
    out(r.text)
    return
  }
  guard let providers = JSONValue.parse(r.body)?["providers"]?.array else {
    fail("unexpected answer from the daemon", Exit.failure)
  }
  out(StatusTable.render(providers))
}

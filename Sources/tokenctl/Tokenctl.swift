import ArgumentParser
import TokenBrokerClient

#if canImport(Glibc)
  import Glibc
#endif

/// Exit codes of INTERFACE.md.
enum Exit {
  static let ok: Int32 = 0
  static let failure: Int32 = 1
  static let usage: Int32 = 64
  static let unreachable: Int32 = 69
  static let unavailable: Int32 = 75
  static let forbidden: Int32 = 77
}

struct SocketOptions: ParsableArguments {
  @Option(help: "The daemon's socket (default: $TOKEN_BROKER_SOCKET or /run/token-broker.sock).")
  var socket: String?

  var path: String {
    if let socket { return socket }
    if let env = getenv("TOKEN_BROKER_SOCKET"), env.pointee != 0 { return String(cString: env) }
    return "/run/token-broker.sock"
  }
}

@main
struct Tokenctl: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tokenctl",
    abstract: "Gets tokens from token-brokerd and steers it.",
    version: "0.1.0",
    subcommands: [
      TokenCommand.self, HeaderCommand.self, StatusCommand.self, RefreshCommand.self, ReloadCommand.self,
    ])

  /// `tokenctl --socket PATH token NAME` (INTERFACE.md) as well as
  /// `tokenctl token --socket PATH NAME`: a leading --socket moves after the subcommand.
  static func main() {
    Self.main(Self.movingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
  }

  static func movingGlobalOptions(_ args: [String]) -> [String] {
    var leading: [String] = []
    var i = 0
    while i < args.count, args[i].hasPrefix("--socket") {
      if args[i] == "--socket", i + 1 < args.count {
        leading += [args[i], args[i + 1]]
        i += 2
      } else {
        leading.append(args[i])
        i += 1
      }
    }
    guard !leading.isEmpty, i < args.count else { return args }
    return [args[i]] + leading + Array(args[(i + 1)...])
  }
}

/// Prints a message on stderr and exits with `code`.
func fail(_ message: String, _ code: Int32) -> Never {
  let line = "tokenctl: \(message)\n"
  _ = line.withCString { write(2, $0, strlen($0)) }
  Glibc.exit(code)
}

func out(_ text: String) {
  let line = text.hasSuffix("\n") ? text : text + "\n"
  _ = line.withCString { write(1, $0, strlen($0)) }
}

/// Sends a request; maps every failure to its exit code and a sentence.
func call(_ socket: SocketOptions, _ method: String, _ path: String, accept: String = "application/json")
  -> UnixHTTPClient.Response
{
  let client = UnixHTTPClient(socketPath: socket.path)
  let response: UnixHTTPClient.Response
  do {
    response = try client.request(method, path, accept: accept)
  } catch {
    switch error {
    case .unreachable(_, let message): fail(message, Exit.unreachable)
    case .protocolError(let message): fail(message, Exit.failure)
    }
  }
  guard response.status == 200 else {
    let json = MiniJSON.parse(response.body)
    let code = json?["error"]?["code"]?.string ?? "error"
    var message = json?["error"]?["message"]?.string ?? "status \(response.status)"
    if let problems = json?["error"]?["problems"]?.array {
      message += "\n" + problems.compactMap(\.string).joined(separator: "\n")
    }
    switch response.status {
    case 403: fail("\(code): \(message)", Exit.forbidden)
    case 503:
      let retry = response.headers["retry-after"].map { " (retry in \($0) s)" } ?? ""
      fail("\(code): \(message)\(retry)", Exit.unavailable)
    case 400 where code == "invalid_scope" || code == "bad_request": fail("\(code): \(message)", Exit.usage)
    default: fail("\(code): \(message)", Exit.failure)
    }
  }
  return response
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

struct TokenCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "token", abstract: "Print a current token.")
  @OptionGroup var socket: SocketOptions
  @Argument(help: "Provider name.") var name: String
  @Option(help: "Space-separated scopes (within the provider's allowed_scopes).") var scope: String?
  @Option(help: "Seconds the token must still be valid.") var minValid: Int?
  @Flag(help: "Print the whole JSON answer.") var json = false

  func run() {
    var query: [String] = []
    if let scope { query.append("scope=" + escapePath(scope)) }
    if let minValid { query.append("min_valid=\(minValid)") }
    let path = "/v1/token/" + escapePath(name) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    let r = call(socket, "GET", path, accept: json ? "application/json" : "text/plain")
    out(r.text)
  }
}

struct HeaderCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "header",
    abstract: "Print the header line to send upstream (e.g. Authorization: Bearer ...).")
  @OptionGroup var socket: SocketOptions
  @Argument(help: "Provider name.") var name: String
  @Option(help: "Space-separated scopes.") var scope: String?

  func run() {
    let query = scope.map { "?scope=" + escapePath($0) } ?? ""
    let r = call(socket, "GET", "/v1/token/" + escapePath(name) + query)
    guard let header = MiniJSON.parse(r.body)?["header"]?.string else {
      fail("unexpected answer from the daemon", Exit.failure)
    }
    out(header)
  }
}

struct RefreshCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "refresh", abstract: "Fetch a new token now (admin).")
  @OptionGroup var socket: SocketOptions
  @Argument(help: "Provider name.") var name: String

  func run() {
    let r = call(socket, "POST", "/v1/providers/\(escapePath(name))/refresh")
    guard let entry = MiniJSON.parse(r.body) else { fail("unexpected answer from the daemon", Exit.failure) }
    out(StatusTable.render([entry]))
    if let state = entry["state"]?.string, state != "ok" { Glibc.exit(Exit.unavailable) }
  }
}

struct ReloadCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reload",
    abstract: "Re-read the configuration (admin); the old one stays if the new one is invalid.")
  @OptionGroup var socket: SocketOptions

  func run() {
    _ = call(socket, "POST", "/v1/reload")
    out("configuration reloaded")
  }
}

struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show every provider's state.")
  @OptionGroup var socket: SocketOptions
  @Flag(help: "Print the JSON answer, for scripts.") var json = false

  func run() {
    let r = call(socket, "GET", "/v1/status")
    if json {
      out(r.text)
      return
    }
    guard let providers = MiniJSON.parse(r.body)?["providers"]?.array else {
      fail("unexpected answer from the daemon", Exit.failure)
    }
    out(StatusTable.render(providers))
  }
}

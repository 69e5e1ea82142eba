/// tokenctl's command line, parsed by hand: no argument-parsing library and no Foundation
/// is loaded, so `tokenctl token NAME` costs little more than a process start.
///
/// `--socket PATH` (or `--socket=PATH`) may come before or after the subcommand.
struct Invocation: Equatable {
  enum Command: Equatable {
    case token(name: String, scope: String?, minValid: Int?, json: Bool)
    case header(name: String, scope: String?)
    case status(json: Bool)
    case refresh(name: String)
    case reload
    case login(name: String, device: Bool, paste: Bool)
    case logout(name: String)
    case inspect(name: String, scope: String?, json: Bool)
    case help(String?)
    case version
    case completion(Shell)
  }

  enum Shell: String, CaseIterable {
    case bash, zsh, fish
  }

  var socket: String?
  var command: Command

  struct UsageError: Error, Equatable {
    var message: String
  }

  static let subcommands = [
    "token", "header", "status", "refresh", "reload", "login", "logout", "inspect", "help",
  ]

  /// The commands named in a usage error: every one but `help`.
  static let commandList = "token, header, status, refresh, reload, login, logout or inspect"

  /// The options each subcommand takes (`--socket` and `--help` are taken everywhere).
  static let options: [String: [String]] = [
    "token": ["--scope", "--min-valid", "--json"], "header": ["--scope"], "status": ["--json"],
    "refresh": [], "reload": [], "login": ["--device", "--paste"], "logout": [],
    "inspect": ["--scope", "--json"], "help": [],
  ]

  static func parse(_ arguments: [String]) throws(UsageError) -> Invocation {
    var socket: String?
    var words: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []
    var i = 0
    func value(of option: String) throws(UsageError) -> String {
      guard i + 1 < arguments.count else { throw UsageError(message: "missing value for '\(option)'") }
      i += 1
      return arguments[i]
    }
    while i < arguments.count {
      let arg = arguments[i]
      var name = arg
      var inline: String?
      if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
        name = String(arg[..<eq])
        inline = String(arg[arg.index(after: eq)...])
      }
      switch name {
      case "--socket":
        if let inline { socket = inline } else { socket = try value(of: name) }
      case "--scope", "--min-valid", "--generate-completion-script":
        if let inline { values[name] = inline } else { values[name] = try value(of: name) }
      case "--json", "--version", "--device", "--paste": flags.insert(name)
      case "-h", "--help": flags.insert("--help")
      case "--":
        words += arguments[(i + 1)...]
        i = arguments.count
      default:
        if arg.hasPrefix("-"), arg.count > 1 { throw UsageError(message: "unknown option '\(arg)'") }
        words.append(arg)
      }
      i += 1
    }

    if let shell = values["--generate-completion-script"] {
      guard let s = Shell(rawValue: shell) else {
        throw UsageError(message: "no completion script for '\(shell)' (bash, zsh or fish)")
      }
      return Invocation(socket: socket, command: .completion(s))
    }
    if flags.contains("--version") { return Invocation(socket: socket, command: .version) }
    guard let sub = words.first else {
      if flags.contains("--help") { return Invocation(socket: socket, command: .help(nil)) }
      throw UsageError(message: "missing a command (\(commandList))")
    }
    guard let allowed = options[sub] else {
      throw UsageError(message: "unknown command '\(sub)' (\(commandList))")
    }
    if flags.contains("--help") { return Invocation(socket: socket, command: .help(sub)) }
    for option in Array(values.keys) + Array(flags) where !allowed.contains(option) {
      throw UsageError(message: "'\(sub)' takes no option '\(option)'")
    }
    let rest = Array(words.dropFirst())
    func one(_ what: String) throws(UsageError) -> String {
      guard let first = rest.first else { throw UsageError(message: "'\(sub)' needs a \(what)") }
      guard rest.count == 1 else { throw UsageError(message: "unexpected argument '\(rest[1])'") }
      return first
    }
    func none() throws(UsageError) {
      if let first = rest.first { throw UsageError(message: "unexpected argument '\(first)'") }
    }
    let command: Command
    switch sub {
    case "token":
      let name = try one("provider name")
      var minValid: Int?
      if let m = values["--min-valid"] {
        guard let n = Int(m), n >= 0 else {
          throw UsageError(message: "--min-valid takes whole seconds, not '\(m)'")
        }
        minValid = n
      }
      command = .token(
        name: name, scope: values["--scope"], minValid: minValid, json: flags.contains("--json"))
    case "header": command = .header(name: try one("provider name"), scope: values["--scope"])
    case "status":
      try none()
      command = .status(json: flags.contains("--json"))
    case "refresh": command = .refresh(name: try one("provider name"))
    case "reload":
      try none()
      command = .reload
    case "login":
      let name = try one("provider name")
      if flags.contains("--device") && flags.contains("--paste") {
        throw UsageError(message: "'login' takes --device or --paste, not both")
      }
      command = .login(name: name, device: flags.contains("--device"), paste: flags.contains("--paste"))
    case "logout": command = .logout(name: try one("provider name"))
    case "inspect":
      command = .inspect(
        name: try one("provider name"), scope: values["--scope"], json: flags.contains("--json"))
    default:
      guard rest.count <= 1 else { throw UsageError(message: "unexpected argument '\(rest[1])'") }
      command = .help(rest.first)
    }
    return Invocation(socket: socket, command: command)
  }
}

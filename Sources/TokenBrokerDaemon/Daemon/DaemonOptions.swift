import TokenBrokerCore
import TokenBrokerTOML

/// token-brokerd's command line (README "token-brokerd"). A handful of options, parsed here
/// rather than by a library: a usage error is a configuration error (exit 78, which the
/// unit's `RestartPreventExitStatus=` stops on), and the daemon links nothing it does not use.
package struct DaemonOptions: Sendable, Equatable {
  package var config = "/etc/token-broker/broker.toml"
  package var checkConfig = false
  package var dev = false
  package var socket: String?
  package var logLevel: LogLevel?
  package var logTarget: LogTarget?
  package var startupTimeout: Double = 10

  package init() {}

  package enum Command: Sendable, Equatable {
    case run(DaemonOptions)
    case help
    case version
  }

  package struct UsageError: Error, Sendable, Equatable {
    package var message: String

    /// What the user sees: the message, the usage line and where to read more.
    package var description: String {
      "Error: \(message)\nUsage: \(DaemonOptions.usage)\n  See 'token-brokerd --help' for more information.\n"
    }
  }

  private static let options: [(flag: String, value: String?, help: String)] = [
    ("--config", "<config>", "Configuration file. (default: /etc/token-broker/broker.toml)"),
    (
      "--check-config", nil,
      "Validate the configuration, print every problem as PATH:LINE: message, exit 0 or 78."
    ),
    ("--dev", nil, "Demo mode: a built-in issuer on 127.0.0.1 and a provider named demo (30 s tokens)."),
    ("--socket", "<socket>", "Socket path (overrides [broker] socket)."),
    ("--log-level", "<log-level>", "trace | debug | info | notice | warning | error"),
    ("--log-target", "<log-target>", "auto | journal | console"),
    (
      "--startup-timeout", "<startup-timeout>",
      "Seconds to wait for every provider's first token before telling systemd READY=1. (default: 10)"
    ),
  ]

  package static let usage =
    "token-brokerd "
    + options.map { "[\($0.flag)\($0.value.map { " " + $0 } ?? "")]" }.joined(separator: " ")

  package static var help: String {
    var text = """
      OVERVIEW: Holds OAuth2 client credentials and serves fresh tokens to local processes over a Unix socket.

      USAGE: \(usage)

      OPTIONS:

      """
    let rows =
      options.map { ($0.flag + ($0.value.map { " " + $0 } ?? ""), $0.help) } + [
        ("--version", "Show the version."), ("-h, --help", "Show help information."),
      ]
    let width = rows.map(\.0.count).max()! + 2
    for (left, right) in rows {
      text += "  " + left + String(repeating: " ", count: width - left.count) + right + "\n"
    }
    return text
  }

  /// The command `arguments` (without the program name) ask for, or what is wrong with them.
  package static func parse(_ arguments: [String]) -> Result<Command, UsageError> {
    var options = DaemonOptions()
    var rest = arguments[...]
    while let argument = rest.popFirst() {
      var name = argument
      var inline: String?
      if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
        name = String(argument[..<equals])
        inline = String(argument[argument.index(after: equals)...])
      }
      func value() -> Result<String, UsageError> {
        if let inline { return .success(inline) }
        guard let next = rest.popFirst(), !next.hasPrefix("--") || next == "--" else {
          return .failure(UsageError(message: "Missing value for '\(name) \(valueName(name))'"))
        }
        return .success(next)
      }
      switch name {
      case "-h", "--help": return .success(.help)
      case "--version": return .success(.version)
      case "--check-config", "--dev":
        guard inline == nil else { return .failure(UsageError(message: "\(name) takes no value")) }
        if name == "--dev" { options.dev = true } else { options.checkConfig = true }
      case "--config", "--socket", "--log-level", "--log-target", "--startup-timeout":
        let text: String
        switch value() {
        case .success(let v): text = v
        case .failure(let e): return .failure(e)
        }
        switch name {
        case "--config": options.config = text
        case "--socket": options.socket = text
        case "--log-level":
          guard let level = LogLevel(rawValue: text) else {
            return .failure(
              UsageError(
                message:
                  "--log-level must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))"))
          }
          options.logLevel = level
        case "--log-target":
          guard let target = LogTarget(rawValue: text) else {
            return .failure(UsageError(message: "--log-target must be one of auto, journal, console"))
          }
          options.logTarget = target
        default:
          guard let seconds = Double(text), seconds > 0, seconds <= 3600 else {
            return .failure(
              UsageError(message: "--startup-timeout must be more than 0 and at most 3600 seconds"))
          }
          options.startupTimeout = seconds
        }
      default:
        // A secret pasted on the command line by mistake is not echoed (to a terminal, or to
        // the journal from ExecStart=): only what is short and not shaped like a token is.
        let shown = QuotableKey.isQuotable(name) ? "'\(name)'" : "of \(name.unicodeScalars.count) characters"
        return .failure(
          UsageError(
            message: argument.hasPrefix("-") ? "Unknown option \(shown)" : "Unexpected argument \(shown)"))
      }
    }
    if options.dev && options.checkConfig {
      return .failure(UsageError(message: "--dev and --check-config do not go together"))
    }
    return .success(.run(options))
  }

  private static func valueName(_ flag: String) -> String {
    options.first { $0.flag == flag }?.value ?? "<value>"
  }
}

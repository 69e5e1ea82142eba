import Logging
import Synchronization
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerSystemd

/// Chooses the log handler: journald natively when stderr is the journal (or
/// `log_target = "journal"`), else `<N>`-prefixed lines on stderr.
package enum LogSetup {
  package static func level(_ l: TokenBrokerCore.LogLevel) -> Logger.Level {
    switch l {
    case .trace: return .trace
    case .debug: return .debug
    case .info: return .info
    case .notice: return .notice
    case .warning: return .warning
    case .error: return .error
    }
  }

  /// True when stderr is the journal stream systemd connected (`$JOURNAL_STREAM`).
  package static func stderrIsJournal() -> Bool {
    JournalStream.stderrIsJournal()
  }

  /// Where `target` sends messages in this process (`auto` looks at `$JOURNAL_STREAM`).
  package static func destination(
    _ target: TokenBrokerCore.LogTarget,
    environment: [String: String] = SystemIO.environment()
  ) -> LogDestination {
    (try? LogTargetChoice.resolve(target.rawValue, environment: environment)) ?? .console
  }

  /// A logger for `target` at `level`. With a `control`, every copy of the logger follows
  /// `control.level` (a reload that changes `log_level` takes effect at once).
  package static func makeLogger(
    target: TokenBrokerCore.LogTarget, level: TokenBrokerCore.LogLevel,
    environment: [String: String] = SystemIO.environment(),
    control: LogLevelControl? = nil
  ) -> Logger {
    let destination = destination(target, environment: environment)
    let lvl = Self.level(level)
    guard let control else {
      return Logger(label: "token-brokerd") { label in destination.makeHandler(label: label, logLevel: lvl) }
    }
    control.level = lvl
    return Logger(label: "token-brokerd") { label in
      ControlledLevelHandler(inner: destination.makeHandler(label: label, logLevel: .trace), control: control)
    }
  }
}

/// The one log level every logger made with it obeys. An atomic, not a lock: every answer
/// the socket serves asks whether debug lines are on.
package final class LogLevelControl: Sendable {
  private static let levels = Logger.Level.allCases
  private let index: Atomic<Int>

  package init(_ level: Logger.Level = .info) { index = Atomic(Self.levels.firstIndex(of: level) ?? 0) }

  package var level: Logger.Level {
    get { Self.levels[index.load(ordering: .relaxed)] }
    set { index.store(Self.levels.firstIndex(of: newValue) ?? 0, ordering: .relaxed) }
  }
}

/// Forwards to `inner`, with the level taken from (and set on) the shared control.
struct ControlledLevelHandler: LogHandler {
  var inner: any LogHandler
  let control: LogLevelControl

  var logLevel: Logger.Level {
    get { control.level }
    set { control.level = newValue }
  }

  var metadata: Logger.Metadata {
    get { inner.metadata }
    set { inner.metadata = newValue }
  }

  var metadataProvider: Logger.MetadataProvider? {
    get { inner.metadataProvider }
    set { inner.metadataProvider = newValue }
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { inner[metadataKey: key] }
    set { inner[metadataKey: key] = newValue }
  }

  func log(event: LogEvent) {
    inner.log(event: event)
  }
}

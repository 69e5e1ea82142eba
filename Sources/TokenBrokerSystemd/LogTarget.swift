import Glibc
import Logging

/// `$JOURNAL_STREAM` detection (systemd.exec(5)): systemd sets it to `DEV:INODE` of the stream
/// it connected to stdout/stderr; stderr "is the journal" only while fd 2 still is that stream.
package enum JournalStream {
  /// True when `environment["JOURNAL_STREAM"]` is `DEV:INODE` and equals fstat(2) of fd 2.
  package static func stderrIsJournal(environment: [String: String]) -> Bool {
    guard let value = environment["JOURNAL_STREAM"] else { return false }
    return matches(value, fileDescriptor: STDERR_FILENO)
  }

  /// ``stderrIsJournal(environment:)`` with the process's own `$JOURNAL_STREAM`.
  package static func stderrIsJournal() -> Bool {
    guard let raw = getenv("JOURNAL_STREAM") else { return false }
    return matches(String(cString: raw), fileDescriptor: STDERR_FILENO)
  }

  /// True when `journalStream` (`DEV:INODE`, decimal) names the file open on `fileDescriptor`.
  package static func matches(_ journalStream: String, fileDescriptor: Int32) -> Bool {
    let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else {
      return false
    }
    var info = stat()
    guard fstat(fileDescriptor, &info) == 0 else { return false }
    return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
  }
}

/// Where log messages actually go.
package enum LogDestination: String, Sendable, Equatable {
  case journal
  case console

  /// A handler for this destination (for `LoggingSystem.bootstrap`).
  package func makeHandler(
    label: String,
    logLevel: Logger.Level = .info,
    syslogIdentifier: String = "token-brokerd",
    metadataProvider: Logger.MetadataProvider? = nil
  ) -> any LogHandler {
    switch self {
    case .journal:
      return JournalLogHandler(
        label: label, syslogIdentifier: syslogIdentifier, logLevel: logLevel,
        metadataProvider: metadataProvider)
    case .console:
      return ConsoleLogHandler(label: label, logLevel: logLevel, metadataProvider: metadataProvider)
    }
  }
}

/// Why a `log_target` value was refused.
package struct LogTargetError: Error, Equatable, CustomStringConvertible {
  package let value: String
  package var description: String {
    "unknown log target \"\(value)\" (expected auto, journal or console)"
  }
}

/// Decides between journal and console.
package enum LogTargetChoice {
  /// `[broker] log_target` / `--log-target`. (Nested so as not to clash with the configuration
  /// model's own `LogTarget` in modules that import both.)
  package enum Target: String, Sendable, CaseIterable {
    /// The journal when stderr is the journal, otherwise the console.
    case auto
    case journal
    case console
  }

  /// `.journal` and `.console` as they are; `.auto` is `.journal` exactly when stderr is the
  /// journal (``JournalStream/stderrIsJournal(environment:)``).
  package static func resolve(_ target: Target, environment: [String: String]) -> LogDestination {
    switch target {
    case .journal: return .journal
    case .console: return .console
    case .auto: return JournalStream.stderrIsJournal(environment: environment) ? .journal : .console
    }
  }

  /// The same for a configuration string (`auto`, `journal`, `console`; case-insensitive).
  package static func resolve(
    _ value: String, environment: [String: String]
  ) throws(LogTargetError) -> LogDestination {
    guard let target = Target(rawValue: value.lowercased()) else {
      throw LogTargetError(value: value)
    }
    return resolve(target, environment: environment)
  }
}

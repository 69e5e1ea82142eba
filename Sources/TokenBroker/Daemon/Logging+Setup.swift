import Foundation
import Logging
import TokenBrokerCore
import TokenBrokerSystemd

/// Chooses the log handler: journald natively when stderr is the journal (or
/// `log_target = "journal"`), else `<N>`-prefixed lines on stderr.
public enum LogSetup {
  public static func level(_ l: TokenBrokerCore.LogLevel) -> Logger.Level {
    switch l {
    case .trace: return .trace
    case .debug: return .debug
    case .info: return .info
    case .notice: return .notice
    case .warning: return .warning
    case .error: return .error
    }
  }

  public static func makeLogger(
    target: TokenBrokerCore.LogTarget, level: TokenBrokerCore.LogLevel,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> Logger {
    let destination = (try? LogTargetChoice.resolve(target.rawValue, environment: environment)) ?? .console
    let lvl = Self.level(level)
    return Logger(label: "token-brokerd") { label in destination.makeHandler(label: label, logLevel: lvl) }
  }
}

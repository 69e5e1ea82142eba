import Logging
import NIOConcurrencyHelpers

/// Collects every log line of a test (message and metadata), so tests can
/// assert events and that no token or secret was ever logged.
package final class LogCapture: Sendable {
  package struct Line: Sendable, CustomStringConvertible {
    package var level: Logger.Level
    package var message: String
    package var metadata: [String: String]
    package var description: String {
      "[\(level)] \(message) "
        + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
  }

  private let box = NIOLockedValueBox<[Line]>([])

  package init() {}

  package var lines: [Line] { box.withLockedValue { $0 } }

  package func logger(label: String = "test") -> Logger {
    var l = Logger(label: label) { _ in Handler(capture: self) }
    l.logLevel = .trace
    return l
  }

  /// Lines whose `event` metadata is `event`.
  package func events(_ event: String) -> [Line] { lines.filter { $0.metadata["event"] == event } }

  /// Every needle found in any line, for "nothing secret was logged" checks.
  package func leaks(of needles: [String]) -> [String] {
    let all = lines.map(\.description)
    return needles.filter { n in !n.isEmpty && all.contains { $0.contains(n) } }
  }

  fileprivate func append(_ line: Line) { box.withLockedValue { $0.append(line) } }

  struct Handler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      var all = metadata
      if let extra = event.metadata { all.merge(extra) { _, b in b } }
      capture.append(
        Line(
          level: event.level, message: event.message.description,
          metadata: all.mapValues { "\($0)" }))
    }
  }
}

import Glibc
import Logging

/// Plain-text log lines for stderr: `<N>message key=value ...`.
///
/// `<N>` is the sd-daemon(3) priority prefix, which journald's stdout/stderr stream reader turns
/// into `PRIORITY=N`; on a terminal it is a compact level marker.
package struct ConsoleLogHandler: LogHandler {
  package var logLevel: Logger.Level
  package var metadata: Logger.Metadata = [:]
  package var metadataProvider: Logger.MetadataProvider?
  package let label: String
  /// Where lines go (stderr unless told otherwise).
  package let fileDescriptor: Int32
  /// Whether each line starts with `<N>`.
  package let priorityPrefix: Bool

  package init(
    label: String,
    logLevel: Logger.Level = .info,
    metadataProvider: Logger.MetadataProvider? = nil,
    fileDescriptor: Int32 = STDERR_FILENO,
    priorityPrefix: Bool = true
  ) {
    self.label = label
    self.logLevel = logLevel
    self.metadataProvider = metadataProvider
    self.fileDescriptor = fileDescriptor
    self.priorityPrefix = priorityPrefix
  }

  package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  package func log(event: LogEvent) {
    let merged = LogEventMetadata.merge(handler: metadata, provider: metadataProvider, event: event)
    let line = ConsoleFormat.line(
      level: event.level, message: event.message.description, metadata: merged,
      priorityPrefix: priorityPrefix)
    ConsoleFormat.writeLine(line, to: fileDescriptor)
  }
}

/// The console line format, exposed for tests and for the journal handler's fallback.
package enum ConsoleFormat {
  /// `<N>message k1=v1 k2="v 2"`: metadata sorted by key; a value is quoted when it is empty or
  /// holds a blank, `"`, `\`, `=` or a control character; line breaks are escaped so that one
  /// message is always one line. No trailing newline.
  package static func line(
    level: Logger.Level, message: String, metadata: Logger.Metadata, priorityPrefix: Bool = true
  ) -> String {
    var out = priorityPrefix ? "<\(SyslogPriority.of(level))>" : ""
    out += escapeControls(message)
    for key in metadata.keys.sorted() {
      out += " " + sanitizeKey(key) + "=" + quoteIfNeeded("\(metadata[key]!)")
    }
    return out
  }

  /// `value` as it is, or in double quotes with `\`, `"` and control characters escaped.
  package static func quoteIfNeeded(_ value: String) -> String {
    let needsQuotes =
      value.isEmpty
      || value.unicodeScalars.contains { scalar in
        scalar == " " || scalar == "\"" || scalar == "\\" || scalar == "=" || isControl(scalar)
      }
    guard needsQuotes else { return value }
    var out = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      default: out += escape(scalar)
      }
    }
    return out + "\""
  }

  /// Writes `line` and a newline with a single write(2) (retried only for a partial write), so
  /// lines from concurrent threads never interleave.
  package static func writeLine(_ line: String, to fd: Int32) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    bytes.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          return
        }
        offset += written
      }
    }
  }

  private static func sanitizeKey(_ key: String) -> String {
    guard !key.isEmpty else { return "_" }
    var out = ""
    for scalar in key.unicodeScalars {
      if scalar == " " || scalar == "=" || scalar == "\"" || isControl(scalar) {
        out += "_"
      } else {
        out.unicodeScalars.append(scalar)
      }
    }
    return out
  }

  private static func escapeControls(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = ""
    for scalar in text.unicodeScalars { out += escape(scalar) }
    return out
  }

  private static func escape(_ scalar: Unicode.Scalar) -> String {
    switch scalar {
    case "\n": return "\\n"
    case "\r": return "\\r"
    case "\t": return "\\t"
    default:
      guard isControl(scalar) else { return String(scalar) }
      let hex = String(scalar.value, radix: 16)
      return "\\x" + (hex.count < 2 ? "0" + hex : hex)
    }
  }

  private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || scalar.value == 0x7f || (0x80...0x9f).contains(scalar.value)
      || scalar == "\u{2028}" || scalar == "\u{2029}"
  }
}

/// Metadata as every handler here sees it: the handler's own, then the metadata provider's, then
/// the log call's (later wins); the event's `error`, if any, as `error` unless already present.
enum LogEventMetadata {
  static func merge(
    handler: Logger.Metadata, provider: Logger.MetadataProvider?, event: LogEvent
  ) -> Logger.Metadata {
    var merged = handler
    if let provider {
      merged.merge(provider.get()) { _, new in new }
    }
    if let explicit = event.metadata {
      merged.merge(explicit) { _, new in new }
    }
    if let error = event.error, merged["error"] == nil {
      merged["error"] = .string("\(error)")
    }
    return merged
  }
}

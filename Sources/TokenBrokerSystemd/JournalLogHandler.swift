import CSystemdProtocol
import Glibc
import Logging

/// Writes each message to journald in its native protocol (what `sd_journal_sendv(3)` sends)
/// with structured fields:
///
/// - `MESSAGE`, `PRIORITY` (see ``SyslogPriority``), `SYSLOG_IDENTIFIER`, `CODE_FILE`,
///   `CODE_LINE`, `CODE_FUNC`;
/// - metadata `provider`, `event`, `request_id`, `caller_uid`, `caller_pid`, ... as
///   `TOKEN_BROKER_PROVIDER=`, `TOKEN_BROKER_EVENT=`, ... (see ``JournalFieldName``);
/// - `MESSAGE_ID=` for a known `event` (see ``JournalMessageID``).
///
/// When journald cannot be reached the message goes to stderr in the console format instead.
package struct JournalLogHandler: LogHandler {
  package var logLevel: Logger.Level
  package var metadata: Logger.Metadata = [:]
  package var metadataProvider: Logger.MetadataProvider?
  package let label: String
  /// `SYSLOG_IDENTIFIER=` of every entry.
  package let syslogIdentifier: String
  /// Where a message goes when journald cannot take it.
  package let fallbackFileDescriptor: Int32
  /// ``send(_:)``, replaceable in tests.
  var sender: @Sendable ([JournalField]) -> Int32 = { JournalLogHandler.send($0) }

  package init(
    label: String,
    syslogIdentifier: String = "token-brokerd",
    logLevel: Logger.Level = .info,
    metadataProvider: Logger.MetadataProvider? = nil,
    fallbackFileDescriptor: Int32 = STDERR_FILENO
  ) {
    self.label = label
    self.syslogIdentifier = syslogIdentifier
    self.logLevel = logLevel
    self.metadataProvider = metadataProvider
    self.fallbackFileDescriptor = fallbackFileDescriptor
  }

  package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  package func log(event: LogEvent) {
    let merged = LogEventMetadata.merge(handler: metadata, provider: metadataProvider, event: event)
    let result = sender(fields(for: event, metadata: merged))
    if result < 0 {
      let line = ConsoleFormat.line(
        level: event.level, message: event.message.description, metadata: merged)
      ConsoleFormat.writeLine(line, to: fallbackFileDescriptor)
    }
  }

  /// The fields of the entry `event` becomes, in the order they are sent.
  package func fields(for event: LogEvent) -> [JournalField] {
    fields(
      for: event,
      metadata: LogEventMetadata.merge(handler: metadata, provider: metadataProvider, event: event))
  }

  private func fields(for event: LogEvent, metadata: Logger.Metadata) -> [JournalField] {
    var fields = [
      JournalField("MESSAGE", event.message.description),
      JournalField("PRIORITY", String(SyslogPriority.of(event.level))),
      JournalField("SYSLOG_IDENTIFIER", syslogIdentifier),
      JournalField("CODE_FILE", event.file),
      JournalField("CODE_LINE", String(event.line)),
      JournalField("CODE_FUNC", event.function),
    ]
    if let eventName = metadata["event"], let id = JournalMessageID.for(event: "\(eventName)") {
      fields.append(JournalField("MESSAGE_ID", id))
    }
    for key in metadata.keys.sorted() {
      fields.append(JournalField(JournalFieldName.forMetadataKey(key), "\(metadata[key]!)"))
    }
    return fields
  }

  /// Sends one entry (`tb_journal_sendv`); returns its result (0, or a negative errno such as
  /// `-ECONNREFUSED` / `-ENOENT` when no journald listens on `/run/systemd/journal/socket`).
  @discardableResult
  package static func send(_ fields: [JournalField]) -> Int32 {
    var buffer: [UInt8] = []
    var lengths: [Int] = []
    lengths.reserveCapacity(fields.count)
    for field in fields {
      let start = buffer.count
      buffer.append(contentsOf: field.name.utf8)
      buffer.append(UInt8(ascii: "="))
      buffer.append(contentsOf: field.value.utf8)
      lengths.append(buffer.count - start)
    }
    return buffer.withUnsafeMutableBytes { bytes -> Int32 in
      guard let base = bytes.baseAddress else { return -EINVAL }
      var vectors: [iovec] = []
      vectors.reserveCapacity(lengths.count)
      var offset = 0
      for length in lengths {
        vectors.append(iovec(iov_base: base + offset, iov_len: length))
        offset += length
      }
      return vectors.withUnsafeBufferPointer { tb_journal_sendv($0.baseAddress, Int32($0.count)) }
    }
  }
}

import Glibc
import Logging
import Testing
import TokenBrokerTestSupport

@testable import TokenBrokerSystemd

extension SystemdSuite {
  @Suite("JournalLogHandler") struct JournalLogHandlerTests {
    private static func uniqueMarker() -> String {
      "tb-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    }

    private func makeLogger(identifier: String = "token-brokerd-test") -> Logger {
      var logger = Logger(label: "test") { JournalLogHandler(label: $0, syslogIdentifier: identifier) }
      logger.logLevel = .trace
      return logger
    }

    @Test(
      .enabled(if: JournaldFixture.isAvailable, "needs a journald: root and /lib/systemd/systemd-journald"))
    func writesStructuredFieldsToTheJournal() async throws {
      try await offload { try JournaldFixture.ensureRunning() }
      let marker = Self.uniqueMarker()
      let logger = makeLogger()
      let line = #line + 1
      logger.warning(
        "token refreshed \(marker)",
        metadata: [
          "provider": "acme", "event": "refreshed", "request_id": "\(marker)", "caller_uid": "1001",
          "caller_pid": "4242", "scope set": "read:sites",
        ])

      let entries = try await offload {
        try JournaldFixture.entries(matching: ["TOKEN_BROKER_REQUEST_ID=\(marker)"])
      }
      #expect(entries.count == 1)
      let entry = try #require(entries.first)
      #expect(entry["MESSAGE"] == "token refreshed \(marker)")
      #expect(entry["PRIORITY"] == "4")
      #expect(entry["SYSLOG_IDENTIFIER"] == "token-brokerd-test")
      #expect(entry["CODE_FILE"] == #fileID)
      #expect(entry["CODE_LINE"] == String(line))
      #expect(entry["CODE_FUNC"] == #function)
      #expect(entry["MESSAGE_ID"] == "acfc5bac1cf04087b04d131567e37984")
      #expect(entry["MESSAGE_ID"] == JournalMessageID.for(event: "refreshed"))
      #expect(entry["TOKEN_BROKER_PROVIDER"] == "acme")
      #expect(entry["TOKEN_BROKER_EVENT"] == "refreshed")
      #expect(entry["TOKEN_BROKER_CALLER_UID"] == "1001")
      #expect(entry["TOKEN_BROKER_CALLER_PID"] == "4242")
      #expect(entry["TOKEN_BROKER_SCOPE_SET"] == "read:sites")
      #expect(entry["_PID"] == String(getpid()))
    }

    @Test(
      .enabled(if: JournaldFixture.isAvailable, "needs a journald: root and /lib/systemd/systemd-journald"))
    func unknownEventGetsNoMessageIDAndMultiLineTextSurvives() async throws {
      try await offload { try JournaldFixture.ensureRunning() }
      let marker = Self.uniqueMarker()
      var logger = makeLogger(identifier: "token-brokerd")
      logger[metadataKey: "request_id"] = "\(marker)"
      logger.critical("first line\nsecond line", metadata: ["event": "something_new"])

      let found = try await offload {
        try JournaldFixture.entries(matching: ["TOKEN_BROKER_REQUEST_ID=\(marker)"])
      }
      let entry = try #require(found.first)
      #expect(entry["MESSAGE"] == "first line\nsecond line")
      #expect(entry["PRIORITY"] == "2")
      #expect(entry["SYSLOG_IDENTIFIER"] == "token-brokerd")
      #expect(entry["TOKEN_BROKER_EVENT"] == "something_new")
      #expect(entry["MESSAGE_ID"] == nil)
    }

    @Test func fieldsInOrder() {
      var handler = JournalLogHandler(label: "x")
      handler[metadataKey: "provider"] = "handler-level"
      handler.metadataProvider = Logger.MetadataProvider { ["trace-id": "t1"] }
      let event = LogEvent(
        level: .info, message: "served", metadata: ["provider": "acme", "event": "served"],
        source: nil, file: "M/F.swift", function: "f()", line: 7)
      #expect(
        handler.fields(for: event) == [
          JournalField("MESSAGE", "served"),
          JournalField("PRIORITY", "6"),
          JournalField("SYSLOG_IDENTIFIER", "token-brokerd"),
          JournalField("CODE_FILE", "M/F.swift"),
          JournalField("CODE_LINE", "7"),
          JournalField("CODE_FUNC", "f()"),
          JournalField("MESSAGE_ID", "e6343ca70e2f41449d19050476d60a65"),
          JournalField("TOKEN_BROKER_EVENT", "served"),
          JournalField("TOKEN_BROKER_PROVIDER", "acme"),
          JournalField("TOKEN_BROKER_TRACE_ID", "t1"),
        ])
    }

    @Test(arguments: [
      (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3),
      (.critical, 2),
    ])
    func priorities(level: Logger.Level, priority: Int) {
      #expect(SyslogPriority.of(level) == priority)
    }

    @Test(arguments: [
      ("provider", "TOKEN_BROKER_PROVIDER"), ("event", "TOKEN_BROKER_EVENT"),
      ("request_id", "TOKEN_BROKER_REQUEST_ID"), ("caller_uid", "TOKEN_BROKER_CALLER_UID"),
      ("caller_pid", "TOKEN_BROKER_CALLER_PID"), ("http.status-code", "TOKEN_BROKER_HTTP_STATUS_CODE"),
      ("Größe", "TOKEN_BROKER_GR__E"),
      (String(repeating: "a", count: 80), "TOKEN_BROKER_" + String(repeating: "A", count: 51)),
    ])
    func metadataKeysBecomeFieldNames(key: String, field: String) {
      #expect(JournalFieldName.forMetadataKey(key) == field)
    }

    @Test func messageIDTable() {
      let events = [
        "refreshed", "refresh_failed", "served", "denied", "reloaded", "reload_failed", "started",
        "stopping", "state_saved", "needs_login",
      ]
      #expect(Set(JournalMessageID.all.map(\.event)) == Set(events))
      let ids = events.compactMap { JournalMessageID.for(event: $0) }
      #expect(ids.count == events.count)
      #expect(Set(ids).count == ids.count)
      let hex = Set("0123456789abcdef")
      #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(hex.contains) })
      #expect(JournalMessageID.for(event: "no_such_event") == nil)
    }
  }
}

import Glibc
import Logging
import Testing

@testable import TokenBrokerSystemd

extension SystemdSuite {
  @Suite("ConsoleLogHandler") struct ConsoleLogHandlerTests {
    @Test func lineHasPriorityPrefixMessageAndSortedMetadata() {
      let line = ConsoleFormat.line(
        level: .warning, message: "refresh failed",
        metadata: ["provider": "acme", "event": "refresh_failed", "attempt": "3"])
      #expect(line == "<4>refresh failed attempt=3 event=refresh_failed provider=acme")
    }

    @Test func valuesWithSpacesAndSpecialCharactersAreQuoted() {
      let line = ConsoleFormat.line(
        level: .error, message: "upstream said no",
        metadata: [
          "error": "invalid_client: bad \"secret\"", "empty": "", "path": #"C:\x"#, "kv": "a=b",
          "plain": "read:sites",
        ])
      #expect(
        line
          == #"<3>upstream said no empty="" error="invalid_client: bad \"secret\"" kv="a=b" path="C:\\x" plain=read:sites"#
      )
    }

    @Test func oneMessageIsAlwaysOneLine() {
      let line = ConsoleFormat.line(
        level: .info, message: "two\nlines", metadata: ["note": "a\nb"], priorityPrefix: false)
      #expect(line == #"two\nlines note="a\nb""#)
      #expect(!line.contains("\n"))
    }

    @Test(arguments: [
      (Logger.Level.trace, "<7>"), (.debug, "<7>"), (.info, "<6>"), (.notice, "<5>"),
      (.warning, "<4>"), (.error, "<3>"), (.critical, "<2>"),
    ])
    func prefixPerLevel(level: Logger.Level, prefix: String) {
      #expect(ConsoleFormat.line(level: level, message: "m", metadata: [:]) == prefix + "m")
    }

    @Test func handlerWritesMergedMetadataAsOneLine() throws {
      let capture = try CapturePipe()
      var logger = Logger(label: "t") {
        ConsoleLogHandler(
          label: $0, metadataProvider: Logger.MetadataProvider { ["request_id": "r1"] },
          fileDescriptor: capture.writeEnd)
      }
      logger[metadataKey: "provider"] = "acme"
      logger.debug("hidden at info")
      logger.notice("served", metadata: ["caller uid": "1001"])
      #expect(capture.finish() == "<5>served caller_uid=1001 provider=acme request_id=r1\n")
    }

    @Test func concurrentLinesNeverInterleave() async throws {
      let capture = try CapturePipe()
      let fd = capture.writeEnd
      let logger = Logger(label: "t") { ConsoleLogHandler(label: $0, fileDescriptor: fd) }
      let writers = 8
      let perWriter = 40
      await withTaskGroup(of: Void.self) { group in
        for writer in 0..<writers {
          group.addTask {
            for index in 0..<perWriter {
              logger.info(
                "writer \(writer) line \(index)",
                metadata: ["padding": "\(String(repeating: "x", count: 60))"])
            }
          }
        }
      }
      let lines = capture.finish().split(separator: "\n", omittingEmptySubsequences: false)
      #expect(lines.count == writers * perWriter + 1)
      #expect(lines.last == "")
      let expectedTail = " padding=" + String(repeating: "x", count: 60)
      #expect(lines.dropLast().allSatisfy { $0.hasPrefix("<6>writer ") && $0.hasSuffix(expectedTail) })
    }

    @Test func journalHandlerFallsBackToTheConsoleFormat() throws {
      let capture = try CapturePipe()
      var handler = JournalLogHandler(label: "t", fallbackFileDescriptor: capture.writeEnd)
      handler.sender = { _ in -ECONNREFUSED }
      handler[metadataKey: "provider"] = "acme"
      let logger = Logger(label: "t") { _ in handler }
      logger.error("no journald", metadata: ["event": "refresh_failed"])
      #expect(capture.finish() == "<3>no journald event=refresh_failed provider=acme\n")
    }

    @Test func journalHandlerWritesNothingToStderrWhenSent() throws {
      let capture = try CapturePipe()
      var handler = JournalLogHandler(label: "t", fallbackFileDescriptor: capture.writeEnd)
      handler.sender = { _ in 0 }
      Logger(label: "t") { _ in handler }.error("sent")
      #expect(capture.finish() == "")
    }
  }
}

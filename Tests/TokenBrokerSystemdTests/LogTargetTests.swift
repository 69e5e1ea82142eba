import Glibc
import Testing

@testable import TokenBrokerSystemd

extension SystemdSuite {
  @Suite("JournalStream and LogTargetChoice") struct LogTargetTests {
    /// `DEV:INODE` of our own stderr, as systemd would put it in `$JOURNAL_STREAM`.
    private static func stderrIdentity(inodeOffset: UInt64 = 0) throws -> String {
      var info = stat()
      try #require(fstat(STDERR_FILENO, &info) == 0)
      return "\(UInt64(info.st_dev)):\(UInt64(info.st_ino) &+ inodeOffset)"
    }

    @Test func stderrIsTheJournalWhenDeviceAndInodeMatch() throws {
      let matching = try Self.stderrIdentity()
      #expect(JournalStream.stderrIsJournal(environment: ["JOURNAL_STREAM": matching]))
    }

    @Test func stderrIsNotTheJournalOtherwise() throws {
      let otherInode = try Self.stderrIdentity(inodeOffset: 1)
      let matching = try Self.stderrIdentity()
      let device = matching.split(separator: ":")[0]
      for value in [otherInode, "\(device):", ":\(matching)", "\(matching):1", "abc", "", "-1:-1"] {
        #expect(!JournalStream.stderrIsJournal(environment: ["JOURNAL_STREAM": value]), "\(value)")
      }
      #expect(!JournalStream.stderrIsJournal(environment: [:]))
    }

    @Test func matchesNamesTheFileOnADescriptor() throws {
      let capture = try CapturePipe()
      var info = stat()
      try #require(fstat(capture.writeEnd, &info) == 0)
      let identity = "\(UInt64(info.st_dev)):\(UInt64(info.st_ino))"
      #expect(JournalStream.matches(identity, fileDescriptor: capture.writeEnd))
      #expect(JournalStream.matches(identity, fileDescriptor: capture.readEnd))
      #expect(!JournalStream.matches(identity, fileDescriptor: -1))
    }

    @Test func autoFollowsStderr() throws {
      let journal = ["JOURNAL_STREAM": try Self.stderrIdentity()]
      let elsewhere = ["JOURNAL_STREAM": try Self.stderrIdentity(inodeOffset: 1)]
      #expect(LogTargetChoice.resolve(.auto, environment: journal) == .journal)
      #expect(LogTargetChoice.resolve(.auto, environment: elsewhere) == .console)
      #expect(LogTargetChoice.resolve(.auto, environment: [:]) == .console)
      #expect(LogTargetChoice.resolve(.journal, environment: [:]) == .journal)
      #expect(LogTargetChoice.resolve(.console, environment: journal) == .console)
    }

    @Test func configStrings() throws {
      let journal = ["JOURNAL_STREAM": try Self.stderrIdentity()]
      #expect(try LogTargetChoice.resolve("auto", environment: journal) == .journal)
      #expect(try LogTargetChoice.resolve("auto", environment: [:]) == .console)
      #expect(try LogTargetChoice.resolve("Journal", environment: [:]) == .journal)
      #expect(try LogTargetChoice.resolve("console", environment: journal) == .console)
      #expect(throws: LogTargetError(value: "syslog")) {
        try LogTargetChoice.resolve("syslog", environment: [:])
      }
      #expect(LogTargetError(value: "syslog").description.contains("auto, journal or console"))
    }

    @Test func destinationsMakeTheirHandlers() {
      #expect(LogDestination.journal.makeHandler(label: "a", logLevel: .debug) is JournalLogHandler)
      let console = LogDestination.console.makeHandler(label: "a", logLevel: .notice)
      #expect(console is ConsoleLogHandler)
      #expect(console.logLevel == .notice)
    }
  }
}

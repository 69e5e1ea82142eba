import Glibc
import Testing
import TokenBrokerTestSupport

@testable import TokenBrokerSystemd

extension SystemdSuite {
  @Suite("SystemdNotifier") struct NotifierTests {
    @Test func sendsTheExactDatagramsToNotifySocket() throws {
      let directory = try TempDirectory("tbsd")
      let path = directory.path + "/notify"
      let receiver = try NotifyListener(path: path)
      try withEnvironment(["NOTIFY_SOCKET": path]) {
        let notifier = SystemdNotifier()
        #expect(notifier.isEnabled)

        #expect(notifier.ready() == .sent)
        #expect(try receiver.message(0) == "READY=1")

        #expect(notifier.status("4/5 providers ok\n  (acme: degraded)\r\n") == .sent)
        #expect(try receiver.message(1) == "STATUS=4/5 providers ok (acme: degraded)")

        let before = SystemdNotifier.monotonicMicroseconds()
        #expect(notifier.reloading() == .sent)
        let after = SystemdNotifier.monotonicMicroseconds()
        let reloading = try receiver.message(2).split(separator: "\n").map(String.init)
        #expect(reloading.count == 2)
        #expect(reloading.first == "RELOADING=1")
        let stamp = reloading.last.flatMap { line -> UInt64? in
          guard line.hasPrefix("MONOTONIC_USEC=") else { return nil }
          return UInt64(line.dropFirst("MONOTONIC_USEC=".count))
        }
        let usec = try #require(stamp, "MONOTONIC_USEC must be a number: \(reloading)")
        #expect(before <= usec && usec <= after)

        #expect(notifier.stopping() == .sent)
        #expect(try receiver.message(3) == "STOPPING=1")

        #expect(notifier.watchdog() == .sent)
        #expect(try receiver.message(4) == "WATCHDOG=1")

        #expect(notifier.extendTimeout(by: .milliseconds(2500)) == .sent)
        #expect(try receiver.message(5) == "EXTEND_TIMEOUT_USEC=2500000")

        #expect(notifier.notify("STATUS=raw\nERRNO=0") == .sent)
        #expect(try receiver.message(6) == "STATUS=raw\nERRNO=0")

        #expect(receiver.all.count == 7, "one datagram a call: \(receiver.all)")
      }
    }

    @Test func isANoOpWithoutNotifySocket() {
      withEnvironment(["NOTIFY_SOCKET": nil]) {
        let notifier = SystemdNotifier()
        #expect(!notifier.isEnabled)
        #expect(notifier.ready() == .notConfigured)
        #expect(notifier.status("x") == .notConfigured)
        #expect(notifier.watchdog() == .notConfigured)
      }
    }

    @Test func reportsAFailedSend() throws {
      let directory = try TempDirectory("tbsd")
      withEnvironment(["NOTIFY_SOCKET": directory.path + "/nobody-listens"]) {
        #expect(SystemdNotifier().ready() == .failed(errno: ENOENT))
      }
    }

    @Test func watchdogIntervalIsWatchdogUsecForThisProcess() {
      let ours = String(getpid())
      withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ours]) {
        #expect(SystemdNotifier().watchdogInterval() == .seconds(30))
      }
      withEnvironment(["WATCHDOG_USEC": "1500", "WATCHDOG_PID": nil]) {
        #expect(SystemdNotifier().watchdogInterval() == .microseconds(1500))
      }
    }

    @Test func watchdogIntervalIsNilWhenOffOrForAnotherProcess() {
      withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
        #expect(SystemdNotifier().watchdogInterval() == nil)
      }
      withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": String(getpid() + 1)]) {
        #expect(SystemdNotifier().watchdogInterval() == nil)
      }
      withEnvironment(["WATCHDOG_USEC": "0", "WATCHDOG_PID": String(getpid())]) {
        #expect(SystemdNotifier().watchdogInterval() == nil)
      }
    }

    @Test(arguments: [
      ("one line", "one line"),
      ("  padded \n\n next\r\nlast  ", "padded next last"),
      ("\n", ""),
    ])
    func statusIsOneLine(input: String, expected: String) {
      #expect(SystemdNotifier.singleLine(input) == expected)
    }
  }
}

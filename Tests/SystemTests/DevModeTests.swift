import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// The README's first command: `token-brokerd --dev`, then `tokenctl ... token demo`.
  @Suite("Dev mode") struct DevModeTests {
    @Test func newcomerSeesADemoTokenThroughTokenctl() throws {
      let dir = try TempDirectory("tbst")
      let socket = dir.file("dev.sock")
      let daemon = try ChildProcess(
        try BuiltBinaries.tokenBrokerd, ["--dev", "--socket", socket], outputIn: dir, name: "dev")
      try daemon.start()
      defer { daemon.send(SIGTERM) }
      // It prints what to run next once it listens.
      var printed = ""
      for _ in 0..<400 where !printed.contains("Ctrl-C stops.") {
        printed = daemon.stdout
        usleep(25_000)
      }
      #expect(printed.contains("tokenctl --socket \(socket) token demo"), "\(printed)\n\(daemon.stderr)")
      let tokenctl = try BuiltBinaries.path("tokenctl")
      var result = try runToEnd(tokenctl, ["--socket", socket, "token", "demo"])
      for _ in 0..<100 where result.status == 75 {
        usleep(50_000)
        result = try runToEnd(tokenctl, ["--socket", socket, "token", "demo"])
      }
      #expect(result.status == 0, "\(result.stderr)")
      #expect(result.stdout.hasPrefix("demo."))
      let status = try runToEnd(tokenctl, ["--socket", socket, "status"])
      #expect(status.stdout.contains("demo      ok"), "\(status.stdout)")
      daemon.send(SIGTERM)
      #expect(try daemon.waitForExit() == 0)
    }
  }
}

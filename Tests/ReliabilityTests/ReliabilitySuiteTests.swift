import Foundation
import Testing
import TokenBrokerClient
import TokenBrokerTestSupport

/// CI-size runs of `token-broker-reliability` (the full size is one command, see README
/// "Reliability"): the real token-brokerd, kill -9 and restarts, concurrent clients.
/// One at a time: each starts daemons and keeps both cores busy.
@Suite(.serialized) struct ReliabilitySuiteTests {
  /// Runs the suite binary and returns its `RESULT {...}` object.
  func run(_ arguments: [String]) async throws -> (status: Int32, result: [String: Any], log: String) {
    let tool = try BuiltBinaries.path("token-broker-reliability")
    let r = try await ProcessRunner.run([tool] + arguments)
    let line = r.stdout.split(separator: "\n").last { $0.hasPrefix("RESULT ") }
    let json = line.flatMap {
      try? JSONSerialization.jsonObject(with: Data($0.dropFirst("RESULT ".count).utf8)) as? [String: Any]
    }
    return (r.status, json ?? [:], r.stderr)
  }

  static var straceInstalled: Bool {
    ["/usr/bin/strace", "/bin/strace"].contains { FileManager.default.isExecutableFile(atPath: $0) }
  }

  /// 10 kill -9 cycles during refresh-token rotation: every restart is either the grant
  /// intact or the unclosable window reported as needs_login; and (with strace installed)
  /// the state file is written temp → write → fsync → rename → fsync(dir).
  @Test func crashConsistency() async throws {
    var args = ["crash", "--cycles", "10", "--seed", "42"]
    if !Self.straceInstalled { args.append("--no-strace") }
    let (status, r, log) = try await run(args)
    #expect(status == 0, "\(log.suffix(3000))")
    #expect(r["failures"] as? Int == 0, "\(r["failure_details"] ?? log.suffix(3000))")
    let intact = r["intact"] as? Int ?? -1
    let window = r["window"] as? Int ?? -1
    #expect(intact + window == 10)
    #expect(r["rotations"] as? Int ?? 0 >= 10, "the cycles rotated the refresh token")
    if Self.straceInstalled {
      #expect(r["strace_sequences"] as? Int ?? 0 >= 6)
      #expect((r["strace_problems"] as? [String])?.isEmpty == true)
    }
  }

  /// 64 clients, 20,000 requests: every answer a 200 with a token the upstream issued.
  @Test func load() async throws {
    let (status, r, log) = try await run(["load", "--clients", "64", "--requests", "20000", "--soak", "0"])
    #expect(status == 0, "\(log.suffix(3000))")
    #expect(r["errors"] as? Int == 0, "\(r["error_examples"] ?? log.suffix(3000))")
    #expect(r["answered"] as? Int == 20_000)
    #expect(r["daemon_exit"] as? String == "exit 0")
    // Cached tokens are served without upstream work.
    #expect(r["upstream_requests"] as? Int ?? 99 <= 3)
  }
}

import Foundation
import Testing
import TokenBrokerFuzzTargets
import TokenBrokerTestSupport

/// The committed fuzz corpus (`Corpus/TARGET/`) and every crash found so far
/// (`Corpus/regressions/TARGET/`), replayed through the fuzz targets by the built
/// `token-broker-fuzz` in its replay mode. A child process per run: an input that
/// breaks an invariant crashes it, not the test runner.
@Suite struct FuzzCorpusTests {
  static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
    "Corpus")

  /// Regression inputs of bugs not fixed yet (file name → where the bug is). A fix makes
  /// its replay pass, the known issue goes unrecorded, and the test says to drop the entry.
  static let knownBugs: [String: String] = [:]

  static func files(_ dir: URL) -> [URL] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
  }

  static var regressionInputs: [String] {
    FuzzTargets.names.flatMap { t in
      files(corpus.appendingPathComponent("regressions").appendingPathComponent(t)).map {
        "\(t)/\($0.lastPathComponent)"
      }
    }
  }

  func replay(_ target: String, _ paths: [String]) async throws -> ProcessOutput {
    let fuzz = try BuiltBinaries.path("token-broker-fuzz")
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no"
    return try await ProcessRunner.run([fuzz, target] + paths, environment: env)
  }

  @Test(arguments: FuzzTargets.names)
  func corpusReplays(_ target: String) async throws {
    let dir = Self.corpus.appendingPathComponent(target)
    let inputs = Self.files(dir)
    #expect(inputs.count >= 10, "the seed corpus of \(target) has \(inputs.count) inputs")
    let r = try await replay(target, [dir.path])
    #expect(r.status == 0, "\(target): \(r.stderr.suffix(2000))")
    #expect(r.stdout.contains("replayed \(inputs.count) inputs"), "\(r.stdout)")
  }

  @Test(arguments: regressionInputs)
  func regressionInputReplays(_ input: String) async throws {
    let parts = input.split(separator: "/", maxSplits: 1).map(String.init)
    let file = Self.corpus.appendingPathComponent("regressions").appendingPathComponent(input).path
    let r = try await replay(parts[0], [file])
    if let bug = Self.knownBugs[parts[1]] {
      withKnownIssue("known bug: \(bug)") {
        #expect(r.status == 0, "\(input) still breaks an invariant")
      }
    } else {
      #expect(r.status == 0, "\(input): \(r.stderr.suffix(2000))")
    }
  }

  /// The replay is not vacuous: an input that breaks an invariant makes it fail.
  @Test func aBrokenInvariantFailsTheReplay() async throws {
    let dir = try TempDirectory.make("tb-fuzz-planted")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let planted = dir + "/planted"
    try Data("tbk!".utf8).write(to: URL(fileURLWithPath: planted))
    let r = try await replay("planted", [planted])
    #expect(r.status != 0)
    #expect(r.stderr.contains("fuzz invariant violated"))
  }

  @Test func unknownTargetIsAUsageError() async throws {
    let r = try await replay("no-such-target", ["/dev/null"])
    #expect(r.status == 64)
  }
}

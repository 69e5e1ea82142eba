import Foundation
import Testing

@testable import TokenBrokerCore

/// The fuzz corpus of the config target, read through `ConfigParser` in this process:
/// the inputs that crashed toml++ (TOMLKit) must now give a ConfigError.
@Suite struct ConfigTOMLRegressionTests {
  static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("ReliabilityTests/Corpus")

  static func text(_ relative: String) throws -> String {
    try String(contentsOf: corpus.appendingPathComponent(relative), encoding: .utf8)
  }

  static func configError(_ text: String) -> ConfigError? {
    do {
      _ = try ConfigParser.parse(text, path: "fuzz.toml", fileMode: 0o600)
      return nil
    } catch {
      return error
    }
  }

  @Test(arguments: [
    ("toml-table-header-non-ascii.toml", 1, 2),
    ("toml-table-header-question-mark.toml", 1, 2),
    ("toml-array-closed-with-brace.toml", 1, 19),
  ])
  func crashInputIsASyntaxError(file: String, line: Int, column: Int) throws {
    let text = try Self.text("regressions/config/\(file)")
    let error = try #require(Self.configError(text))
    #expect(error.problems.count == 1)
    let problem = try #require(error.problems.first)
    #expect(problem.path == "fuzz.toml")
    #expect(problem.line == line)
    #expect(problem.message.hasPrefix("TOML syntax error at column \(column): "), "\(problem.message)")
  }

  @Test func everyCorpusInputEndsInAConfigOrAnError() throws {
    var seen = 0
    for dir in ["config", "regressions/config"] {
      let url = Self.corpus.appendingPathComponent(dir)
      let names = try FileManager.default.contentsOfDirectory(atPath: url.path).filter { !$0.hasPrefix(".") }
      for name in names.sorted() {
        let data = try Data(contentsOf: url.appendingPathComponent(name))
        guard let text = String(data: data, encoding: .utf8) else { continue }
        seen += 1
        let lineCount = text.utf8.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        if let error = Self.configError(text) {
          #expect(!error.problems.isEmpty, "\(name)")
          for p in error.problems {
            #expect((0...lineCount).contains(p.line), "\(name): \(p)")
            #expect(!p.message.isEmpty, "\(name)")
          }
        }
      }
    }
    #expect(seen >= 20)
  }

  @Test func deepNestingIsAConfigErrorNotACrash() throws {
    let error = try #require(Self.configError("x = " + String(repeating: "[", count: 200_000)))
    #expect(
      error.problems.map(\.message) == [
        "TOML syntax error at column 69: tables and arrays are nested more than 64 levels deep"
      ])
  }

  @Test func invalidSyntaxKeepsItsLine() throws {
    let cases: [(String, String)] = [
      ("[broker]\nsocket = \"/run/a.sock\"\n[é]", "3: TOML syntax error at column 2: "),
      ("[providers.a]\ngrant = \"api_key\"\nallow = [\"user:a\",}", "3: TOML syntax error at column 19: "),
      (
        "[broker]\nsocket = \"/run/a.sock\"\n[broker]",
        "3: TOML syntax error at column 1: table 'broker' defined twice"
      ),
    ]
    for (text, prefix) in cases {
      let error = try #require(Self.configError(text))
      let shown = error.problems.map { "\($0.line): \($0.message)" }
      #expect(shown.count == 1)
      #expect(shown.first?.hasPrefix(prefix) == true, "\(shown)")
    }
  }
}

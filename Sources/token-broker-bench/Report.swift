import Foundation

/// How a figure compares with its goal.
enum Verdict: String, Sendable {
  case pass = "PASS"
  case fail = "FAIL"
  /// Measured for context; no goal.
  case info = "info"
  /// Could not be measured here (the row says why).
  case skipped = "n/a"
  /// The benchmark itself failed to run.
  case error = "ERROR"

  static func check(_ ok: Bool) -> Verdict { ok ? .pass : .fail }
}

/// One measured figure: what, how much, the goal, the verdict, and how to reproduce it.
struct Figure: Sendable {
  var name: String
  var measured: String
  var goal: String
  var verdict: Verdict
  var command: String

  init(_ name: String, _ measured: String, goal: String = "—", _ verdict: Verdict = .info, command: String) {
    self.name = name
    self.measured = measured
    self.goal = goal
    self.verdict = verdict
    self.command = command
  }
}

/// The table of one benchmark.
struct BenchTable: Sendable {
  var title: String
  var notes: [String] = []
  var figures: [Figure] = []

  init(_ title: String) { self.title = title }

  mutating func add(_ f: Figure) { figures.append(f) }

  /// A markdown table (readable as plain text, pasteable into the README).
  func render() -> String {
    let header = ["figure", "measured", "goal", "result"]
    let rows = figures.map { [$0.name, $0.measured, $0.goal, $0.verdict.rawValue] }
    var widths = header.map(\.count)
    for r in rows {
      for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) }
    }
    func line(_ cells: [String]) -> String {
      "| "
        + cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
        .joined(separator: " | ") + " |"
    }
    var out = "### \(title)\n\n"
    for n in notes { out += n + "\n" }
    if !notes.isEmpty { out += "\n" }
    out += line(header) + "\n"
    out += "| " + widths.map { String(repeating: "-", count: $0) }.joined(separator: " | ") + " |\n"
    for r in rows { out += line(r) + "\n" }
    return out
  }
}

/// Collects the tables of a run: each is printed when its benchmark ends, the reproduce
/// lines once at the end.
final class Report {
  private(set) var tables: [BenchTable] = []

  func add(_ table: BenchTable) {
    tables.append(table)
    print(table.render())
    fflush(nil)
  }

  func printReproduceLines() {
    print("### Reproduce each figure\n")
    for t in tables {
      for f in t.figures where !f.command.isEmpty {
        print("- \(t.title.prefix { $0 != ":" }) / \(f.name): `\(f.command)`")
      }
    }
    let verdicts = tables.flatMap(\.figures).map(\.verdict)
    let count = { (v: Verdict) in verdicts.filter { $0 == v }.count }
    print(
      "\n\(count(.pass)) PASS, \(count(.fail)) FAIL, \(count(.skipped)) not measurable here, "
        + "\(count(.error)) benchmark errors")
    fflush(nil)
  }

  var hadErrors: Bool { tables.contains { $0.figures.contains { $0.verdict == .error } } }
}

/// Number formatting for the tables.
enum Format {
  static func int(_ v: Double) -> String {
    let n = Int(v.rounded())
    let digits = String(abs(n))
    var out = ""
    for (i, c) in digits.reversed().enumerated() {
      if i > 0 && i % 3 == 0 { out.append(",") }
      out.append(c)
    }
    return (n < 0 ? "-" : "") + String(out.reversed())
  }

  static func fixed(_ v: Double, _ places: Int) -> String { String(format: "%.\(places)f", v) }

  /// Microseconds as µs (below 10 ms) or ms.
  static func micros(_ us: Double) -> String {
    us < 10_000 ? "\(fixed(us, 0)) µs" : "\(fixed(us / 1000, 1)) ms"
  }

  static func ms(_ seconds: Double) -> String { "\(fixed(seconds * 1000, 2)) ms" }

  static func mib(_ kib: Int) -> String { "\(fixed(Double(kib) / 1024, 1)) MiB" }

  static func seconds(_ s: Double) -> String { s < 10 ? "\(fixed(s, 2)) s" : "\(fixed(s, 1)) s" }

  /// A shortest decimal for flags (`5`, `0.5`).
  static func flag(_ v: Double) -> String {
    v == v.rounded() ? String(Int(v)) : String(v)
  }
}

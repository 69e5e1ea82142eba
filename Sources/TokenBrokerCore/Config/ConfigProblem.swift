/// One thing wrong with a configuration file, located by line.
///
/// Printed as `PATH:LINE: message`, the form `token-brokerd --check-config` uses.
/// A message never holds the value of a secret.
package struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
  /// The configuration file's path, as the caller gave it.
  package var path: String
  /// 1-based line of the offending key (or of its table's header); 0 if unknown.
  package var line: Int
  package var message: String

  package init(path: String, line: Int, message: String) {
    self.path = path
    self.line = line
    self.message = message
  }

  /// `PATH:LINE: message`, or `PATH: message` when no line is known (e.g. the file could not
  /// be read).
  package var description: String { line > 0 ? "\(path):\(line): \(message)" : "\(path): \(message)" }
}

/// Every problem found in a configuration file, sorted by line.
///
/// ``ConfigParser/parse(_:path:fileMode:)`` throws it with all the problems at once, so
/// one run of `token-brokerd --check-config` (exit status 78 when this is thrown) shows
/// everything to fix; a reload that throws it keeps the old configuration in force.
package struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
  package var problems: [ConfigProblem]

  /// Sorts `problems` by line; problems on the same line keep their order.
  package init(problems: [ConfigProblem]) {
    self.problems = problems.enumerated()
      .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
      .map(\.element)
  }

  /// One problem per line, each as `PATH:LINE: message`.
  package var description: String {
    problems.map(\.description).joined(separator: "\n")
  }
}

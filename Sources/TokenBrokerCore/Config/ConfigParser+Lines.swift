extension ConfigParser {
  /// The 1-based line where `path` (e.g. `["providers", "energy", "client_secret"]`)
  /// is set in `text`, for problems found after parsing (unreadable secret files).
  package static func line(of path: [String], in text: String) -> Int? {
    let lines = ConfigSourceLines(text)
    return lines.contains(path) ? lines.line(of: path) : nil
  }
}

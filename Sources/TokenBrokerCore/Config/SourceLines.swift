import TokenBrokerTOML

/// Maps key paths of a TOML document to the 1-based line where they are written.
///
/// Built from the lines ``TOMLParser`` records: table headers (`[a.b]`, `[a."b"]`,
/// `[[a]]`), `key = value` lines, dotted keys and inline tables
/// (`k = { file = "..." }`); the elements of an array are located too, so a bad entry
/// of a multi-line list points at its own line. A path is known at the first line
/// that names it; the keys of every `[[a]]` table are known under `a`, without an index.
struct ConfigSourceLines {
  private var keys: [[String]: Int] = [:]
  private var elements: [Element: Int] = [:]

  private struct Element: Hashable {
    var path: [String]
    var index: Int
  }

  /// The lines of `text`; nothing is known when it is not valid TOML.
  init(_ text: String) {
    self.init((try? TOMLParser.parse(text)) ?? TOMLTable())
  }

  init(_ root: TOMLTable) {
    index(root, at: [])
  }

  /// Depth is bounded by ``TOMLParser/maxDepth``.
  private mutating func index(_ table: TOMLTable, at base: [String]) {
    for key in table.keys {
      guard let entry = table.entries[key] else { continue }
      let path = base + [key]
      record(path, at: entry.line)
      switch entry.value.kind {
      case .table(let child):
        index(child, at: path)
      case .array(let array) where entry.isArrayOfTables:
        for element in array {
          if let child = element.table { index(child, at: path) }
        }
      case .array(let array):
        for (i, element) in array.enumerated() {
          let id = Element(path: path, index: i)
          elements[id] = min(elements[id] ?? element.line, element.line)
        }
      default:
        break
      }
    }
  }

  /// Records `path` at `line`, keeping the first line seen.
  private mutating func record(_ path: [String], at line: Int) {
    keys[path] = min(keys[path] ?? line, line)
  }

  /// The line of `path`, or of its nearest ancestor that has one (a missing key is
  /// reported at its table's header); 0 when nothing is known.
  func line(of path: [String]) -> Int {
    var path = path
    while !path.isEmpty {
      if let line = keys[path] { return line }
      path.removeLast()
    }
    return 0
  }

  /// The line of element `index` of the array at `path`, else the array's own line.
  func line(of path: [String], element index: Int) -> Int {
    elements[Element(path: path, index: index)] ?? line(of: path)
  }

  /// Whether `path` itself (not only an ancestor) was seen in the text.
  func contains(_ path: [String]) -> Bool { keys[path] != nil }
}

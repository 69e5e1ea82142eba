/// Tables while the document is read: the rules of what may be defined where.
extension TOMLParser {
  /// A table that may still grow: the root, a `[header]`'s, one element of a `[[header]]`
  /// array, or one made by a dotted key or as the parent of a header.
  final class TableBuilder {
    var keys: [String] = []
    var entries: [String: Entry] = [:]
    /// Where the table is first mentioned.
    let line: Int
    /// Defined by a `[header]`, or by dotted keys of a section that has ended: no other
    /// header may define it again and no later dotted key may add to it.
    var isDefined = false
    /// The line of the `[header]` that defined it, if any.
    var headerLine: Int?

    init(line: Int) { self.line = line }

    struct Entry {
      var node: Node
      let line: Int
    }

    enum Node {
      /// A finished value: scalars, static arrays, inline tables. Nothing can extend it.
      case value(TOMLValue)
      case table(TableBuilder)
      /// An array of tables made by `[[header]]`.
      case tables(TableArray)
    }

    /// The tables of `[[header]]`s with one name; never empty.
    final class TableArray {
      var tables: [TableBuilder]
      let line: Int

      init(_ first: TableBuilder, line: Int) {
        tables = [first]
        self.line = line
      }
    }

    func add(_ key: String, _ node: Node, line: Int) {
      if entries.updateValue(Entry(node: node, line: line), forKey: key) == nil { keys.append(key) }
    }

    /// The finished value; depth is bounded by ``TOMLParser/maxDepth``.
    func freeze() -> TOMLTable {
      var table = TOMLTable()
      for key in keys {
        guard let entry = entries[key] else { continue }
        switch entry.node {
        case .value(let value):
          table.set(key, TOMLTable.Entry(value: value, line: entry.line))
        case .table(let child):
          let value = TOMLValue(.table(child.freeze()), line: child.line)
          table.set(key, TOMLTable.Entry(value: value, line: entry.line))
        case .tables(let array):
          let elements = array.tables.map { TOMLValue(.table($0.freeze()), line: $0.line) }
          let value = TOMLValue(.array(elements), line: array.line)
          table.set(key, TOMLTable.Entry(value: value, line: entry.line, isArrayOfTables: true))
        }
      }
      return table
    }
  }

  /// "a string", "an inline table": what an existing value is, for messages.
  static func describe(_ value: TOMLValue) -> String {
    switch value.kind {
    case .string: return "a string"
    case .integer: return "an integer"
    case .float: return "a float"
    case .boolean: return "a boolean"
    case .offsetDateTime, .localDateTime: return "a date-time"
    case .localDate: return "a date"
    case .localTime: return "a time"
    case .array: return "an array"
    case .table: return "an inline table"
    }
  }

  /// Why `path`, already holding the finished `value`, cannot be opened as a table.
  func cannotExtend(_ value: TOMLValue, _ path: [String], at offset: Int) -> TOMLError {
    let name = TOMLError.display(path)
    switch value.kind {
    case .table:
      return error(
        "cannot add to '\(name)': it is an inline table (line \(value.line)), complete as written", at: offset
      )
    case .array:
      return error(
        "cannot add to '\(name)': it is a static array (line \(value.line)), complete as written", at: offset)
    default:
      return error(
        "key '\(name)' is already \(Self.describe(value)) (line \(value.line)), not a table", at: offset)
    }
  }

  /// The section ends: the tables its dotted keys made are now defined.
  mutating func endSection() {
    for table in pendingDefined { table.isDefined = true }
    pendingDefined.removeAll()
  }

  /// Adds `key = value` to `table`, making the tables of a dotted key on the way.
  mutating func define(
    _ key: [String], as value: TOMLValue, in table: TableBuilder, path: [String], line: Int,
    at offset: Int, inline: Bool
  ) throws(TOMLError) {
    var table = table
    var path = path
    for part in key.dropLast() {
      path.append(part)
      if let existing = table.entries[part] {
        switch existing.node {
        case .table(let child):
          if child.isDefined {
            let at = child.headerLine ?? child.line
            throw error(
              "cannot add to table '\(TOMLError.display(path))' with a dotted key: it is defined at line \(at)",
              at: offset)
          }
          table = child
        case .tables(let array):
          throw error(
            "cannot add to '\(TOMLError.display(path))' with a dotted key: it is an array of tables "
              + "(line \(array.line))", at: offset)
        case .value(let existingValue):
          throw cannotExtend(existingValue, path, at: offset)
        }
      } else {
        let child = TableBuilder(line: line)
        table.add(part, .table(child), line: line)
        table = child
      }
      if !inline { pendingDefined.append(table) }
    }
    let last = key[key.count - 1]
    path.append(last)
    if let existing = table.entries[last] {
      throw error(
        "key '\(TOMLError.display(path))' defined twice (first at line \(existing.line))", at: offset)
    }
    table.add(last, .value(value), line: line)
  }

  /// `[a.b]` or `[[a.b]]`, at `[`.
  mutating func parseHeader() throws(TOMLError) {
    let start = pos
    let headerLine = line(at: start)
    pos += 1
    let isArray = peek() == Byte.openBracket
    if isArray { pos += 1 }
    let key = try parseKey()
    guard peek() == Byte.closeBracket, !isArray || peek(1) == Byte.closeBracket else {
      throw error(
        isArray
          ? "expected ']]' to close the array-of-tables header" : "expected ']' to close the table header")
    }
    pos += isArray ? 2 : 1
    endSection()

    var table = root
    var path: [String] = []
    for part in key.dropLast() {
      path.append(part)
      if let existing = table.entries[part] {
        switch existing.node {
        case .table(let child): table = child
        case .tables(let array): table = array.tables[array.tables.count - 1]
        case .value(let value): throw cannotExtend(value, path, at: start)
        }
      } else {
        let child = TableBuilder(line: headerLine)
        table.add(part, .table(child), line: headerLine)
        table = child
      }
    }
    let last = key[key.count - 1]
    path.append(last)
    let name = TOMLError.display(path)
    let fresh = TableBuilder(line: headerLine)
    fresh.isDefined = true
    fresh.headerLine = headerLine

    switch table.entries[last]?.node {
    case nil:
      let node: TableBuilder.Node = isArray ? .tables(.init(fresh, line: headerLine)) : .table(fresh)
      table.add(last, node, line: headerLine)
      current = fresh
    case .table(let existing):
      if isArray {
        throw error(
          "cannot define '\(name)' as an array of tables: it is a table (line \(existing.line))", at: start)
      }
      if existing.isDefined {
        let at = existing.headerLine ?? existing.line
        throw error("table '\(name)' defined twice (first at line \(at))", at: start)
      }
      existing.isDefined = true
      existing.headerLine = headerLine
      current = existing
    case .tables(let array):
      guard isArray else {
        throw error("cannot define table '\(name)': it is an array of tables (line \(array.line))", at: start)
      }
      array.tables.append(fresh)
      current = fresh
    case .value(let value):
      throw cannotExtend(value, path, at: start)
    }
    currentPath = path
  }
}

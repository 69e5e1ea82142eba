/// A normalised set of scopes: the key of one cached token.
package struct ScopeSet: Sendable, Hashable, CustomStringConvertible {
  /// Sorted, unique.
  package let scopes: [String]

  package init<S: Sequence>(_ scopes: S) where S.Element == String {
    let list = Array(scopes)
    // Already normalised (a provider's configured scopes, on every request): no Set, no sort.
    var normalised = true
    for i in list.indices where list[i].isEmpty || (i > 0 && !(list[i - 1] < list[i])) {
      normalised = false
      break
    }
    self.scopes = normalised ? list : Array(Set(list.filter { !$0.isEmpty })).sorted()
  }

  /// Parses a space-separated `scope` query value.
  package init(parsing text: String) {
    self.init(text.split(whereSeparator: { $0 == " " || $0 == "+" }).map(String.init))
  }

  /// The scopes of this set that `allowed` does not contain.
  package func outside(_ allowed: [String]) -> [String] {
    scopes.filter { !allowed.contains($0) }
  }

  package var description: String { scopes.joined(separator: " ") }
}

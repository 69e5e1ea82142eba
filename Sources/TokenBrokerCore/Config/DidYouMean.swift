/// Suggestions for misspelt keys and enum values.
enum ConfigDidYouMean {
  /// The candidate closest to `word`: a case-insensitive match first, otherwise the
  /// nearest within a Levenshtein distance of 2 (ties go to the earlier candidate).
  static func suggestion(for word: String, among candidates: [String]) -> String? {
    let lowered = word.lowercased()
    if let same = candidates.first(where: { $0.lowercased() == lowered }) { return same }
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
      let d = distance(lowered, candidate.lowercased())
      if d <= 2, d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    return best?.candidate
  }

  /// `"; did you mean 'x'?"` or the empty string.
  static func hint(for word: String, among candidates: [String]) -> String {
    guard let s = suggestion(for: word, among: candidates) else { return "" }
    return "; did you mean '\(s)'?"
  }

  /// Levenshtein distance over Unicode scalars.
  static func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}

/// "did you mean" for names typed by people (providers in requests, tokenctl).
public enum Suggestion {
  /// The closest candidate within edit distance 2 (or a case-insensitive match).
  public static func closest(to word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for c in candidates {
      if c.lowercased() == word.lowercased() { return c }
      let d = distance(word, c)
      if d <= 2, best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
  }

  static func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      cur[0] = i
      for j in 1...b.count {
        cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      }
      swap(&prev, &cur)
    }
    return prev[b.count]
  }
}

/// "did you mean" for names typed by people (providers in requests, tokenctl):
/// the same rule as for configuration keys.
package enum Suggestion {
  /// A case-insensitive match, else the closest candidate within edit distance 2.
  package static func closest(to word: String, in candidates: [String]) -> String? {
    ConfigDidYouMean.suggestion(for: word, among: candidates)
  }
}

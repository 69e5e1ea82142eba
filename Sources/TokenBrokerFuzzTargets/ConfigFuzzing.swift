import Foundation
import TokenBrokerCore

/// `ConfigParser` on arbitrary text.
enum ConfigFuzzing {
  static let secretKeys: Set<Substring> = ["client_secret", "password", "refresh_token", "api_key"]

  static func run(_ bytes: [UInt8]) {
    // The loader refuses a file that is not UTF-8 before the parser sees it.
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    let secrets = literalSecrets(in: text)
    let lineCount = bytes.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
    for mode: UInt32 in [0o600, 0o644] {
      do {
        let config = try ConfigParser.parse(text, path: "fuzz.toml", fileMode: mode)
        checkAccepted(config, input: bytes)
      } catch {
        checkProblems(error, secrets: secrets, lineCount: lineCount, input: bytes)
      }
    }
  }

  private static func checkProblems(
    _ error: ConfigError, secrets: [String], lineCount: Int, input: [UInt8]
  ) {
    if error.problems.isEmpty { FuzzCheck.violated("a ConfigError without problems", input: input) }
    var previous = 0
    for p in error.problems {
      if p.path != "fuzz.toml" { FuzzCheck.violated("a problem about \(p.path)", input: input) }
      if p.line < 0 || p.line > lineCount {
        FuzzCheck.violated(
          "a problem at line \(p.line) of a \(lineCount)-line file: \(p.message)", input: input)
      }
      if p.line < previous { FuzzCheck.violated("problems not sorted by line", input: input) }
      previous = p.line
      if p.message.isEmpty { FuzzCheck.violated("an empty problem message", input: input) }
      for s in secrets where p.message.contains(s) {
        FuzzCheck.violated("a literal secret appears in a problem: \(p.message)", input: input)
      }
    }
  }

  /// What the parser promises about a configuration it accepts.
  private static func checkAccepted(_ config: BrokerConfig, input: [UInt8]) {
    let b = config.broker
    if !(b.refreshAt > 0 && b.refreshAt < 1) || !(b.refreshJitter >= 0 && b.refreshJitter < 0.5)
      || !(b.refreshAt - b.refreshJitter > 0 && b.refreshAt + b.refreshJitter < 1)
    {
      FuzzCheck.violated("accepted refresh_at \(b.refreshAt) ± \(b.refreshJitter)", input: input)
    }
    if !(b.requestTimeout > 0 && b.requestTimeout <= 300) {
      FuzzCheck.violated("accepted request_timeout \(b.requestTimeout)", input: input)
    }
    if !(b.minValid >= 0) || !(b.scopeIdleTimeout > 0) {
      FuzzCheck.violated(
        "accepted min_valid \(b.minValid), scope_idle_timeout \(b.scopeIdleTimeout)", input: input)
    }
    // The engine writes min_valid into messages as Int(...), which traps from 2^63 on.
    if !(b.minValid < 9.0e18) {
      FuzzCheck.violated(
        "accepted min_valid \(b.minValid), which the engine's Int(...) cannot hold", input: input)
    }
    var names = Set<String>()
    for p in config.providers {
      if !names.insert(p.name).inserted { FuzzCheck.violated("provider \(p.name) twice", input: input) }
      if !isValidName(p.name) {
        FuzzCheck.violated("accepted provider name \(p.name.debugDescription)", input: input)
      }
      if let outside = p.scopes.first(where: { !p.allowedScopes.contains($0) }) {
        FuzzCheck.violated("providers.\(p.name): scope \(outside) outside allowed_scopes", input: input)
      }
      if p.grant != .apiKey {
        let url = p.tokenURL.lowercased()
        if !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
          FuzzCheck.violated(
            "providers.\(p.name): accepted token_url \(p.tokenURL.debugDescription)", input: input)
        }
      }
    }
  }

  /// `[a-z0-9][a-z0-9_-]{0,63}`.
  static func isValidName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...64).contains(bytes.count) else { return false }
    for (i, b) in bytes.enumerated() {
      let alnum = (0x61...0x7A).contains(b) || (0x30...0x39).contains(b)
      if alnum || (i > 0 && (b == 0x5F || b == 0x2D)) { continue }
      return false
    }
    return true
  }

  /// Values of lines `client_secret = "VALUE"` (and the other secret keys) whose value
  /// is a plain basic string of at least 10 characters, letters and digits among them,
  /// that occurs nowhere else in the text: no problem message may ever show one.
  static func literalSecrets(in text: String) -> [String] {
    var out: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
      guard let eq = trimmed.firstIndex(of: "=") else { continue }
      let key = trimmed[..<eq].trimmingSuffix(while: { $0 == " " || $0 == "\t" })
      guard secretKeys.contains(key) else { continue }
      var value = trimmed[trimmed.index(after: eq)...].drop(while: { $0 == " " || $0 == "\t" })
      guard value.first == "\"" else { continue }
      value = value.dropFirst()
      guard let close = value.firstIndex(of: "\"") else { continue }
      let secret = value[..<close]
      let rest = value[value.index(after: close)...].drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" })
      guard rest.isEmpty || rest.first == "#", secret.count >= 10, !secret.contains("\\"),
        secret.allSatisfy({ $0.isASCII && !$0.isWhitespace }), secret.contains(where: \.isNumber),
        secret.contains(where: \.isLetter)
      else { continue }
      out.append(String(secret))
    }
    return out.filter { s in text.components(separatedBy: s).count == 2 }
  }
}

extension Substring {
  fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
    var s = self
    while let last = s.last, predicate(last) { s = s.dropLast() }
    return s
  }
}

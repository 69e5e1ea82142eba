import Foundation
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine

/// One entry point per fuzz target. Each takes any bytes and must never crash:
/// a crash, a sanitizer report or a `FuzzCheck.violated` (a real invariant
/// broken, such as a 5xx answer to bad input or a secret in a message) is a bug.
///
/// `token-broker-fuzz TARGET` runs them under libFuzzer; `ReliabilityTests`
/// replays the committed corpus (`Tests/ReliabilityTests/Corpus/TARGET/`) through them.
package enum FuzzTargets {
  /// Target names, as used on the command line and as corpus directory names.
  package static let names = [
    "http-request", "http-differential", "config", "token-response", "error-response", "state-file",
    "proxy-answer",
  ]

  /// The entry point of a target, or nil for an unknown name.
  package static func named(_ name: String) -> (@Sendable ([UInt8]) -> Void)? {
    switch name {
    case "http-request": return httpRequest
    case "http-differential": return httpDifferential
    case "config": return config
    case "token-response": return tokenResponse
    case "error-response": return errorResponse
    case "state-file": return stateFile
    case "proxy-answer": return proxyAnswer
    case "planted": return planted
    default: return nil
    }
  }

  /// The bytes a client sends on one connection to the broker's socket, through
  /// the real server pipeline (connection guard, NIO's HTTP/1.1 codec, the
  /// broker's connection handler) and the real `SocketAPI`, once as root and once
  /// as a uid no provider allows, then the request deadline and the idle timeout
  /// pass. Every answer must be well-formed HTTP with a status below 500 and no
  /// secret outside a token answer.
  @Sendable package static func httpRequest(_ bytes: [UInt8]) {
    HTTPFuzzHarness.shared.run(bytes)
  }

  /// The bytes a client sends, through the broker's HTTP/1.1 parser and SwiftNIO's (llhttp):
  /// every request the broker's parser reads, llhttp reads the same (method, target, version,
  /// fields, body, keep-alive). The broker's parser may refuse more, never read differently.
  @Sendable package static func httpDifferential(_ bytes: [UInt8]) {
    HTTPDifferentialFuzzing.run(bytes)
  }

  /// `broker.toml` text through `ConfigParser`, as a file of mode 0600 (literal
  /// secrets allowed) and of mode 0644 (refused). Problems carry sane lines, come
  /// sorted, and never quote a literal secret; an accepted config obeys the rules.
  @Sendable package static func config(_ bytes: [UInt8]) {
    ConfigFuzzing.run(bytes)
  }

  /// A 200 token endpoint body through `TokenResponseParser`.
  @Sendable package static func tokenResponse(_ bytes: [UInt8]) {
    ResponseFuzzing.tokenResponse(bytes)
  }

  /// A non-2xx answer through `TokenExchange.interpret` (so `ErrorResponseClassifier`
  /// and `RetryAfter`). Input: a first line `STATUS [refresh] [Retry-After: VALUE]`,
  /// then the body.
  @Sendable package static func errorResponse(_ bytes: [UInt8]) {
    ResponseFuzzing.errorResponse(bytes)
  }

  /// Not a real target (not in `names`): it breaks an invariant on inputs that start with
  /// `tbk!`, compared byte by byte, so only a coverage-guided fuzzer finds it fast. A
  /// sanitizer build that finds it within seconds has working coverage counters (without
  /// `--disable-dead-strip` it would run blind); the tests use it to see a replay fail.
  @Sendable package static func planted(_ bytes: [UInt8]) {
    guard bytes.count >= 4, bytes[0] == UInt8(ascii: "t") else { return }
    guard bytes[1] == UInt8(ascii: "b") else { return }
    guard bytes[2] == UInt8(ascii: "k") else { return }
    guard bytes[3] == UInt8(ascii: "!") else { return }
    FuzzCheck.violated("the planted bug", input: bytes)
  }

  /// An HTTP proxy's answer to `CONNECT` through `ProxyAnswer.parse`, whole and cut at every
  /// length (as it may arrive): the tunnel opens only on a 2xx head that ends the input, a
  /// refusal's reason is printable and short, and a head that has not ended is never more
  /// than the cap.
  @Sendable package static func proxyAnswer(_ bytes: [UInt8]) {
    ResponseFuzzing.proxyAnswer(bytes)
  }

  /// A `NAME.state` file through `StateStore.decode`; a decoded record survives
  /// `StateStore.save` and `load` unchanged.
  @Sendable package static func stateFile(_ bytes: [UInt8]) {
    StateFuzzing.run(bytes)
  }
}

/// Invariant checks of the fuzz targets.
enum FuzzCheck {
  /// A broken invariant: the fuzzer records the input as a crash.
  static func violated(_ what: String, input: [UInt8]) -> Never {
    let shown = String(decoding: input.prefix(512), as: UTF8.self).debugDescription
    fatalError("fuzz invariant violated: \(what)\ninput (\(input.count) bytes): \(shown)")
  }

  static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, hay.count >= needle.count else { return false }
    let first = needle[0]
    var i = 0
    let last = hay.count - needle.count
    while i <= last {
      if hay[i] == first, hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
      i += 1
    }
    return false
  }

  /// Printable, single-line text: what a log line or a status field may hold.
  static func isClean(_ s: String) -> Bool {
    s.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
  }
}

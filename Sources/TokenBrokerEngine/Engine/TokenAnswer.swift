import Synchronization
import TokenBrokerCore

/// A token as the socket answers it, rendered once per refresh: the JSON body around its
/// one changing field (`expires_in`), and the bare token for `Accept: text/plain`. The fast
/// path only writes the remaining seconds between the two halves. A class: the cache hands
/// it out under its lock with one retain, not a copy of every field.
package final class TokenAnswer: Sendable {
  package let token: Token
  /// `token.expiresAt`, kept apart: the fast path checks it without copying the token.
  let expiresAt: Double?
  /// The JSON body up to and including `"expires_in":` (the whole body without an expiry).
  let head: [UInt8]
  /// The JSON body after the `expires_in` value, with the closing newline.
  let tail: [UInt8]
  package let plain: [UInt8]

  package init(_ token: Token, provider: ProviderConfig) {
    self.token = token
    expiresAt = token.expiresAt
    plain = Array(token.accessToken.utf8)
    let isKey = provider.grant == .apiKey
    var w = JSONWriter.Object()
    w.field("provider", provider.name)
    w.field("access_token", token.accessToken)
    w.field("token_type", isKey ? "api_key" : token.tokenType)
    // 0 marks where the remaining seconds go; every string before it is JSON-escaped, so
    // the first `"expires_in":` is the key.
    w.field("expires_in", token.expiresAt.map { _ in 0 })
    w.field("expires_at", token.expiresAt.map(Timestamp.rfc3339))
    w.field("scope", isKey ? nil : token.scope.joined(separator: " "))
    w.field(
      "header",
      isKey ? "\(provider.apiKeyHeader): \(token.accessToken)" : "Authorization: \(token.authorizationValue)")
    let body = w.finished() + [0x0A]
    let marker = Array(#""expires_in":0"#.utf8)
    if token.expiresAt != nil, let at = Self.firstIndex(of: marker, in: body) {
      head = Array(body[..<(at + marker.count - 1)])
      tail = Array(body[(at + marker.count)...])
    } else {
      head = body
      tail = []
    }
  }

  /// The last body rendered and the `expires_in` it holds: the value changes once a second,
  /// so the answers within that second share one body instead of each rendering its own.
  private let rendered = Mutex<(expiresIn: Int, body: [UInt8])?>(nil)

  /// The JSON body at `now`.
  package func json(now: Double) -> [UInt8] {
    guard let expiresAt else { return head }
    let expiresIn = Int((expiresAt - now).rounded(.down))
    return rendered.withLock { last in
      if let last, last.expiresIn == expiresIn { return last.body }
      var out = head
      out.reserveCapacity(head.count + tail.count + 20)
      out.append(contentsOf: String(expiresIn).utf8)
      out.append(contentsOf: tail)
      last = (expiresIn, out)
      return out
    }
  }

  static func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
      if hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
    }
    return nil
  }
}

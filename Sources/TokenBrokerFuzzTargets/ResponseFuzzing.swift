import Foundation
import TokenBrokerCore

/// The token endpoint's answers: successful bodies and errors.
enum ResponseFuzzing {
  static let now: Double = 1_800_000_000

  static func proxyAnswer(_ bytes: [UInt8]) {
    for length in Set([bytes.count, bytes.count / 2, min(bytes.count, 20)]) {
      let prefix = Array(bytes.prefix(length))
      let ends = ProxyAnswer.headEnd(prefix)
      switch ProxyAnswer.parse(prefix) {
      case .incomplete:
        if ends != nil || prefix.count > ProxyAnswer.maxHeadBytes {
          FuzzCheck.violated("incomplete, but the head ended or passed the cap", input: bytes)
        }
      case .open:
        guard let end = ends, end + 4 == prefix.count, prefix.starts(with: Array("HTTP/1.".utf8)),
          prefix.count > 12, prefix[9] == UInt8(ascii: "2")
        else {
          FuzzCheck.violated("opened a tunnel on an answer that is not a bare 2xx head", input: bytes)
        }
      case .refused(let status, let reason):
        if !(100...999).contains(status) || (200..<300).contains(status) {
          FuzzCheck.violated("refused with status \(status)", input: bytes)
        }
        if reason.utf8.count > 80 || !reason.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
          FuzzCheck.violated("a reason phrase unfit for a log line: \(reason.debugDescription)", input: bytes)
        }
      case .malformed:
        if ends == nil && prefix.count <= ProxyAnswer.maxHeadBytes {
          FuzzCheck.violated("malformed before the head ended", input: bytes)
        }
      }
      let schemes = ProxyAnswer.authenticationSchemes(prefix)
      if schemes.count > 8 || Set(schemes).count != schemes.count
        || schemes.contains(where: {
          $0.isEmpty || $0.utf8.count > 32 || $0.utf8.contains { !Self.schemeByte($0) }
        })
      {
        FuzzCheck.violated("authentication schemes unfit for a message: \(schemes)", input: bytes)
      }
    }
  }

  /// What a scheme from `Proxy-Authenticate` may hold: lowercase letters, digits, `-`.
  static func schemeByte(_ byte: UInt8) -> Bool {
    (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D
  }

  static func tokenResponse(_ bytes: [UInt8]) {
    let parsed: TokenResponse
    do {
      parsed = try TokenResponseParser.parse(body: bytes, requestedScope: ["read"], now: now)
    } catch {
      checkFailure(error, input: bytes)
      return
    }
    let t = parsed.token
    if t.accessToken.isEmpty || !t.accessToken.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
      FuzzCheck.violated("accepted an access_token that cannot go into a header", input: bytes)
    }
    if !t.tokenType.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
      FuzzCheck.violated("accepted token_type \(t.tokenType.debugDescription)", input: bytes)
    }
    if !t.issuedAt.isFinite || !(t.expiresAt?.isFinite ?? true) {
      FuzzCheck.violated(
        "token times not finite: \(t.issuedAt) \(String(describing: t.expiresAt))", input: bytes)
    }
    // The engine and the socket API turn these into whole seconds with Int() and Int64()
    // (log metadata, expires_in, Retry-After, RFC 3339 timestamps), which trap outside ±2^63.
    let wholeSeconds = [
      t.issuedAt, t.expiresAt ?? 0, t.remaining(at: now).isInfinite ? 0 : t.remaining(at: now),
      t.lifetime.isInfinite ? 0 : t.lifetime,
    ]
    if let bad = wholeSeconds.first(where: { !(abs($0) < 9.0e18) }) {
      FuzzCheck.violated(
        "accepted a token whose times do not fit in Int (\(bad)): the engine's Int(...) conversions trap",
        input: bytes)
    }
    if t.issuedAt > now + 300 {
      FuzzCheck.violated("issued \(t.issuedAt - now) s in the future", input: bytes)
    }
    if let rt = parsed.refreshToken, rt.isEmpty {
      FuzzCheck.violated("an empty refresh token", input: bytes)
    }
    // What the engine does next with a parsed token: schedule its refresh.
    let policy = RefreshPolicy(BrokerSettings())
    if let at = policy.nextRefresh(for: t, now: now, random: 0.5), !at.isFinite || at < now {
      FuzzCheck.violated("next refresh at \(at)", input: bytes)
    }
    // Descriptions go into logs: they must not depend on the tokens at all.
    var other = parsed
    other.token.accessToken = "x"
    other.refreshToken = parsed.refreshToken.map { _ in "y" }
    if other.description != parsed.description || other.token.description != t.description {
      FuzzCheck.violated("a token appears in a description", input: bytes)
    }
  }

  /// Input: `STATUS [refresh] [Retry-After: VALUE]` on the first line, then the body.
  static func errorResponse(_ bytes: [UInt8]) {
    let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
    let first = String(decoding: bytes[..<newline], as: UTF8.self)
    let body = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
    let digits = first.prefix(while: { $0.isASCII && $0.isNumber }).prefix(3)
    let status = min(599, max(300, Int(digits) ?? 400))
    let usedRefreshToken = first.contains("refresh")
    var headers: [String: String] = [:]
    if let r = first.range(of: "Retry-After:") {
      headers["Retry-After"] = String(first[r.upperBound...])
    }
    if let r = first.range(of: "Location:") {
      headers["Location"] = String(first[r.upperBound...])
    }
    let request = TokenRequest(
      url: "https://auth.example.com/oauth/token", headers: [], body: [], usesRefreshToken: usedRefreshToken)
    let response = UpstreamResponse(status: status, headers: headers, body: body)
    do {
      let parsed = try TokenExchange.interpret(response, request: request, requestedScope: [], now: now)
      FuzzCheck.violated("status \(status) accepted as a token: \(parsed)", input: bytes)
    } catch {
      checkFailure(error, input: bytes)
      if error.status != status {
        FuzzCheck.violated("status \(status) reported as \(String(describing: error.status))", input: bytes)
      }
      if error.retryAfter != nil && status != 429 && status != 503 {
        FuzzCheck.violated("Retry-After honoured on a \(status)", input: bytes)
      }
      if (500...599).contains(status), error.code == nil, error.kind != .retryLater {
        FuzzCheck.violated("a \(status) without an error code classified \(error.kind)", input: bytes)
      }
      if error.kind == .refreshTokenRejected, !usedRefreshToken {
        FuzzCheck.violated("refresh token rejected by a request that sent none", input: bytes)
      }
      // What the engine does next: wait, and tell clients when to retry (whole seconds).
      let policy = RefreshPolicy(BrokerSettings())
      for attempt in [1, 2, 40] {
        let delay = policy.delay(
          after: error.kind, attempt: attempt, retryAfter: error.retryAfter, random: 0.5)
        if !delay.isFinite || delay < 1 || delay >= 9.0e18 {
          FuzzCheck.violated(
            "after \(error.kind) (Retry-After \(String(describing: error.retryAfter))) the engine waits \(delay) s, which Int() cannot hold",
            input: bytes)
        }
      }
    }
  }

  /// A failure is shown in status, logs and `last_error`: one clean, bounded line.
  static func checkFailure(_ failure: UpstreamFailure, input: [UInt8]) {
    for text in [failure.message, failure.code ?? "", failure.description] {
      if !FuzzCheck.isClean(text) {
        FuzzCheck.violated("control characters in a failure: \(text.debugDescription)", input: input)
      }
    }
    // Upstream text is cut at 200 characters (+ "…"); a default message may wrap it (a
    // redirect's Location) in under 100 characters of its own.
    if failure.message.count > 300 || (failure.code?.count ?? 0) > 201 {
      FuzzCheck.violated("a failure message of \(failure.message.count) characters", input: input)
    }
    if let r = failure.retryAfter, !(r.isFinite && r >= 0) {
      FuzzCheck.violated("Retry-After \(r)", input: input)
    }
  }
}

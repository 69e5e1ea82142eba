/// The raw answer of a token endpoint.
package struct UpstreamResponse: Sendable, Equatable {
  package var status: Int
  package var headers: [String: String]
  package var body: [UInt8]

  /// Header names lower-cased.
  package init(status: Int, headers: [String: String], body: [UInt8]) {
    self.status = status
    self.headers = Dictionary(
      headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
    self.body = body
  }
}

/// Sends token requests. The production one (HTTP/1.1 on SwiftNIO) lives in
/// TokenBrokerUpstream; transport failures come back as `retryLater`.
package protocol TokenTransport: Sendable {
  /// Sends `request` and returns the answer, through `proxy` when there is one (README "Proxy").
  func send(_ request: TokenRequest, caFile: String?, proxy: UpstreamProxy?, timeout: Double)
    async throws(UpstreamFailure) -> UpstreamResponse
}

extension TokenTransport {
  /// `send` straight to the endpoint, without a proxy.
  package func send(_ request: TokenRequest, caFile: String?, timeout: Double) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    try await send(request, caFile: caFile, proxy: nil, timeout: timeout)
  }
}

/// Turns an upstream answer into a token or a classified failure.
package enum TokenExchange {
  /// Hard cap on a token response body.
  package static let maxBodyBytes = 64 * 1024

  package static func interpret(
    _ response: UpstreamResponse, request: TokenRequest, requestedScope: [String], now: Double
  ) throws(UpstreamFailure) -> TokenResponse {
    guard (200..<300).contains(response.status) else {
      let retryAfter = response.headers["retry-after"].flatMap { RetryAfter.seconds($0, now: now) }
      throw ErrorResponseClassifier.classify(
        status: response.status, body: response.body, usedRefreshToken: request.usesRefreshToken,
        retryAfter: retryAfter, location: response.headers["location"])
    }
    return try TokenResponseParser.parse(body: response.body, requestedScope: requestedScope, now: now)
  }
}

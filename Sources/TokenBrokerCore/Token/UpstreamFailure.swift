/// What a failed token request means for the broker.
package enum FailureKind: String, Sendable, Equatable, CaseIterable {
  /// Transient: network, timeout, 5xx, 429, a garbled answer. Back off and retry.
  case retryLater = "retry_later"
  /// The client credentials (or password) were refused. Retry only at the backoff cap.
  case credentialsRejected = "credentials_rejected"
  /// The refresh token was refused: fall back to the provider's own grant, or need a login.
  case refreshTokenRejected = "refresh_token_rejected"
  /// The request itself is wrong for this endpoint (scope, grant type, URL).
  case configurationWrong = "configuration_wrong"
}

/// A failed upstream token request, classified. `message` is safe to log: it
/// never holds a token or a secret (the engine also redacts known secrets).
package struct UpstreamFailure: Error, Sendable, Equatable, CustomStringConvertible {
  package var kind: FailureKind
  /// HTTP status, nil for transport failures.
  package var status: Int?
  /// The provider's error code (`invalid_grant`, `UNAUTHORIZED`), if any.
  package var code: String?
  package var message: String
  /// Seconds from now, from a `Retry-After` header.
  package var retryAfter: Double?

  package init(
    _ kind: FailureKind, status: Int? = nil, code: String? = nil, message: String, retryAfter: Double? = nil
  ) {
    self.kind = kind
    self.status = status
    self.code = code
    self.message = message
    self.retryAfter = retryAfter
  }

  /// One line for status answers and logs: `upstream 503: service unavailable`.
  package var description: String {
    var parts: [String] = []
    if let status { parts.append("upstream \(status)") }
    if let code { parts.append(code) }
    let head = parts.joined(separator: " ")
    return head.isEmpty ? message : "\(head): \(message)"
  }
}

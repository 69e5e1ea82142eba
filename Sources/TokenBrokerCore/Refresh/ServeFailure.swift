/// Why a token request could not be answered with a token.
package enum ServeFailure: Error, Sendable, Equatable {
  /// Try again later; `retryAfter` seconds.
  case unavailable(message: String, retryAfter: Int)
  /// The refresh token is gone or was rejected: only a new one helps (README "Troubleshooting").
  case needsLogin(message: String)
  /// No retry will help until the configuration changes; the message names the key.
  case misconfigured(message: String)
}

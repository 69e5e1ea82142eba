/// A provider's state as `GET /v1/status` and `tokenctl status` show it.
package enum ProviderState: String, Sendable, Equatable, CaseIterable {
  /// No attempt has finished yet.
  case pending
  case ok
  /// The first token is being fetched.
  case refreshing
  /// Refresh failing; the current token is still valid and served.
  case degraded
  /// No valid token.
  case failed
  /// The refresh token was lost or rejected and no other grant can replace it.
  case needsLogin = "needs_login"
  /// A `tokenctl login` waits for the user (no token to serve meanwhile).
  case loginPending = "login_pending"
}

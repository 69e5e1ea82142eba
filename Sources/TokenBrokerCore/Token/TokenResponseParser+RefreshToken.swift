extension TokenResponseParser {
  /// The `refresh_token` of a 2xx answer, read before anything else of it is checked: a
  /// rotating provider has retired the refresh token it was shown, so the new one must be
  /// kept even when the rest of the answer is refused (README "Rotation").
  package static func refreshToken(in body: [UInt8]) -> String? {
    guard let token = JSONValue.parse(body)?["refresh_token"]?.string, !token.isEmpty, isHeaderSafe(token)
    else { return nil }
    return token
  }
}

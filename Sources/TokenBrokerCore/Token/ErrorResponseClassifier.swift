/// Classifies a non-2xx token endpoint answer: RFC 6749 `{"error","error_description"}`,
/// nested `{"error":{"code","message"}}`, empty and non-JSON bodies.
package enum ErrorResponseClassifier {
  static let maxMessageLength = 200

  /// - Parameters:
  ///   - usedRefreshToken: the request was a `refresh_token` grant, so `invalid_grant`
  ///     means the refresh token (not the client) was refused.
  ///   - retryAfter: seconds parsed from `Retry-After`, if present.
  package static func classify(
    status: Int, body: [UInt8], usedRefreshToken: Bool, retryAfter: Double?, location: String? = nil
  ) -> UpstreamFailure {
    let (code, description) = extract(body)
    let message = description ?? defaultMessage(status: status, bodyEmpty: body.isEmpty, location: location)
    let kind = kind(status: status, code: code, usedRefreshToken: usedRefreshToken)
    let after = (status == 429 || status == 503) ? retryAfter : nil
    return UpstreamFailure(kind, status: status, code: code, message: message, retryAfter: after)
  }

  static func kind(status: Int, code: String?, usedRefreshToken: Bool) -> FailureKind {
    switch code?.lowercased() {
    case "invalid_grant", "invalid_refresh_token", "expired_refresh_token", "refresh_token_reused":
      return usedRefreshToken ? .refreshTokenRejected : .credentialsRejected
    case "invalid_client", "unauthorized_client", "unauthorized", "access_denied", "forbidden",
      "invalid_credentials":
      return .credentialsRejected
    case "invalid_scope", "unsupported_grant_type", "invalid_request", "unsupported_response_type":
      return .configurationWrong
    case "temporarily_unavailable", "server_error", "slow_down", "rate_limited", "too_many_requests":
      return .retryLater
    default:
      break
    }
    switch status {
    case 408, 425, 429, 500...599: return .retryLater
    case 401, 403: return .credentialsRejected
    case 400 where usedRefreshToken: return .refreshTokenRejected
    default: return .configurationWrong
    }
  }

  /// `(code, message)` from either error shape; nil when the body says nothing usable.
  static func extract(_ body: [UInt8]) -> (String?, String?) {
    guard let object = JSONValue.parse(body), object.object != nil else { return (nil, nil) }
    if let nested = object["error"], nested.object != nil {
      let code = nested["code"]?.string ?? nested["type"]?.string
      let message = nested["message"]?.string ?? nested["description"]?.string
      return (code.map(clean), message.map(clean))
    }
    let code = object["error"]?.string
    let message =
      object["error_description"]?.string ?? object["message"]?.string ?? object["detail"]?.string
    return (code.map(clean), message.map(clean))
  }

  static func defaultMessage(status: Int, bodyEmpty: Bool, location: String?) -> String {
    switch status {
    case 300...399:
      let target = location.map { " to \(clean($0))" } ?? ""
      return
        "token endpoint redirects\(target); redirects are not followed: set token_url to the final address"
    case 401: return "client credentials rejected (401); check client_id and client_secret"
    case 403: return "access forbidden (403); check the account's permissions"
    case 404: return "token endpoint not found (404); check token_url"
    case 429: return "rate limited (429)"
    case 500...599: return "upstream server error (\(status))"
    default:
      return bodyEmpty ? "status \(status) with an empty body" : "status \(status) with an unrecognised body"
    }
  }

  /// Printable ASCII, one line, bounded: upstream text goes into logs and status.
  static func clean(_ s: String) -> String {
    var out = String(
      String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    if out.count > maxMessageLength { out = String(out.prefix(maxMessageLength)) + "…" }
    return out
  }
}

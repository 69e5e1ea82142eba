import Foundation
import Glibc
import TokenBrokerClient
import TokenBrokerTestSupport

/// A `[providers.NAME]` table for a fake upstream of the energy dialect (client_credentials,
/// HTTP Basic, form body): `secret` is the TOML value of `client_secret`.
func energyProvider(_ name: String, _ upstream: FakeUpstream, secret: String, extra: [String] = []) -> String
{
  ([
    "[providers.\(name)]",
    "token_url = \"\(upstream.tokenURL)\"",
    "grant = \"client_credentials\"",
    "client_id = \"\(upstream.settings.clientID)\"",
    "client_secret = \(secret)",
  ] + extra).joined(separator: "\n") + "\n"
}

/// A `[providers.NAME]` table for a fake upstream of the powerverse dialect: a password grant
/// with a JSON body, answered with a refresh token that rotates on every use.
func powerverseProvider(_ name: String, _ upstream: FakeUpstream) -> String {
  let s = upstream.settings
  return """
    [providers.\(name)]
    token_url = "\(upstream.tokenURL)"
    grant = "password"
    client_auth = "none"
    body = "json"
    client_id = "\(s.clientID)"
    username = "\(s.username)"
    password = "\(s.password)"

    """
}

/// `[broker]` with the given `key = value` lines.
func brokerTable(_ lines: [String]) -> String {
  "[broker]\n" + lines.joined(separator: "\n") + "\n\n"
}

/// A started fake upstream with a client secret of its own (so that a test can look for
/// exactly that secret in the journal).
func startUpstream(_ dialect: FakeUpstream.Dialect = .energy) async throws -> FakeUpstream {
  var settings = FakeUpstream.Settings()
  settings.clientSecret = "s3cret-\(uniqueSuffix())"
  settings.password = "pa55-\(uniqueSuffix())"
  let upstream = FakeUpstream(dialect, settings: settings, now: { Date().timeIntervalSince1970 })
  try await upstream.start()
  return upstream
}

/// The socket API as a test talks to it: blocking requests, run off the cooperative pool.
struct BrokerClient: Sendable {
  let socketPath: String

  func request(_ method: String, _ path: String) async throws -> UnixHTTPClient.Response {
    let client = UnixHTTPClient(socketPath: socketPath)
    return try await offload { try client.request(method, path) }
  }

  /// `GET /v1/token/NAME`, which must answer 200; the access token.
  func token(_ provider: String) async throws -> String {
    let response = try await request("GET", "/v1/token/\(provider)")
    guard response.status == 200, let token = try json(response)["access_token"] as? String else {
      throw SetupError("GET /v1/token/\(provider): \(response.status) \(response.text)")
    }
    return token
  }

  func json(_ response: UnixHTTPClient.Response) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
      throw SetupError("not a JSON object: \(response.text)")
    }
    return object
  }
}

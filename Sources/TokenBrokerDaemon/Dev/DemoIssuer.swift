import NIOCore
import NIOHTTP1
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer

/// The built-in issuer of `token-brokerd --dev`: an OAuth2 client-credentials
/// endpoint on 127.0.0.1 (Basic auth, form body) issuing short-lived tokens.
package final class DemoIssuer: ServerRequestHandler {
  package static let clientID = "demo"
  package static let clientSecret = "demo-secret"
  package let lifetime: Int

  package init(lifetime: Int = 30) { self.lifetime = lifetime }

  package func handle(_ request: ServerRequest) async -> ServerResponse {
    guard request.method == .POST, request.path == "/oauth/token" else {
      return ServerResponse(status: .notFound, body: Array(#"{"error":"not_found"}"#.utf8))
    }
    let expected = "Basic " + Base64.encode(Array("\(Self.clientID):\(Self.clientSecret)".utf8))
    guard request.header("authorization") == expected else {
      return ServerResponse(status: .unauthorized, body: Array(#"{"error":"invalid_client"}"#.utf8))
    }
    guard String(decoding: request.body, as: UTF8.self).contains("grant_type=client_credentials") else {
      return ServerResponse(status: .badRequest, body: Array(#"{"error":"unsupported_grant_type"}"#.utf8))
    }
    var g = SystemRandomNumberGenerator()
    let token = "demo." + (0..<4).map { _ in String(g.next() as UInt64, radix: 36) }.joined()
    var w = JSONWriter.Object()
    w.field("access_token", token)
    w.field("token_type", "Bearer")
    w.field("expires_in", lifetime)
    return ServerResponse(status: .ok, body: w.finished())
  }

  /// The configuration `--dev` runs: one provider `demo` against this issuer.
  package static func config(port: Int, socket: String, stateDir: String) -> (BrokerConfig, ResolvedSecrets) {
    var broker = BrokerSettings()
    broker.socket = socket
    broker.stateDir = stateDir
    broker.minValid = 3
    broker.logTarget = .console
    var p = ProviderConfig(
      name: "demo", tokenURL: "http://127.0.0.1:\(port)/oauth/token", grant: .clientCredentials)
    p.clientID = clientID
    p.clientSecret = .literal(clientSecret)
    p.scopes = ["demo:read"]
    p.allowedScopes = ["demo:read", "demo:write"]
    return (BrokerConfig(broker: broker, providers: [p]), ResolvedSecrets(clientSecret: clientSecret))
  }
}

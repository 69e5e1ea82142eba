import Logging
import NIOCore
import NIOHTTP1

extension HTTPServer {
  /// Installs on `channel` exactly the handlers that `start` installs on every admitted
  /// connection (the connection guard and the broker's HTTP/1.1 connection handler), so a
  /// test or a fuzz target can drive the real request handling on an `EmbeddedChannel`.
  /// Call it on the channel's event loop.
  ///
  /// - Parameter peer: the credentials the connection is treated as coming from
  ///   (what `start` reads with SO_PEERCRED at accept).
  package static func installConnectionPipeline(
    on channel: any Channel, handler: any ServerRequestHandler, limits: ServerLimits = ServerLimits(),
    peer: PeerCredentials?,
    logger: Logger = Logger(label: "token-broker.server", factory: { _ in SwiftLogNoOpLogHandler() })
  ) throws {
    let guardHandler = ConnectionGuard(limits: limits)
    try channel.pipeline.syncOperations.addHandler(guardHandler)
    try channel.pipeline.syncOperations.addHandler(
      HTTP1ConnectionHandler(
        handler: handler, limits: limits, peer: peer, logger: logger, connectionGuard: guardHandler))
  }
}

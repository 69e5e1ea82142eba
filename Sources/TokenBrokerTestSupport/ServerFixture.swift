import Foundation
import Logging
import NIOCore
import NIOPosix
import TokenBrokerServer

/// An `HTTPServer` alone (no broker) on a Unix socket of its own, served by one event-loop
/// thread: every connection and timer of the server is on that one loop, so a test can
/// order events across connections (a timer due earlier fires first, an event posted
/// before another one's is handled first).
package final class ServerFixture: Sendable {
  package let path: String
  private let server: HTTPServer
  private let group: MultiThreadedEventLoopGroup

  private init(path: String, server: HTTPServer, group: MultiThreadedEventLoopGroup) {
    self.path = path
    self.server = server
    self.group = group
  }

  package static func start(handler: any ServerRequestHandler, limits: ServerLimits = ServerLimits())
    async throws -> ServerFixture
  {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let path = "/tmp/tbs-\(UUID().uuidString.prefix(13)).sock"
    do {
      let server = try await HTTPServer.start(
        .unix(path: path, mode: 0o600), group: group, handler: handler, limits: limits,
        logger: Logger(label: "token-broker.server-test", factory: { _ in SwiftLogNoOpLogHandler() }))
      return ServerFixture(path: path, server: server, group: group)
    } catch {
      try? await group.shutdownGracefully()
      throw error
    }
  }

  /// Closes the listening socket and every connection.
  package func stop() async {
    await server.close()
    try? await group.shutdownGracefully()
  }
}

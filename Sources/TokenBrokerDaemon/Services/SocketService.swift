import Logging
import NIOPosix
import ServiceLifecycle
import TokenBrokerAPI
import TokenBrokerEngine
import TokenBrokerServer

/// The socket, listening before the group runs (so a bad path fails the start at once). On
/// graceful shutdown it quiesces: `onStopping` (STOPPING=1), no new connections, every
/// request already received answered within `drainTimeout`, the answers written out.
struct SocketService: Service {
  let server: HTTPServer
  let tracker: RequestTracker
  let group: MultiThreadedEventLoopGroup
  let drainTimeout: Double
  let logger: Logger
  let onStopping: @Sendable () async -> Void

  func run() async throws {
    try? await gracefulShutdown()
    await onStopping()
    await server.close()
    if await withDeadline(seconds: drainTimeout, { await tracker.idle() }) == nil {
      logger.warning(
        "\(tracker.inFlight) requests still unanswered after \(Int(drainTimeout)) s; closing their connections",
        metadata: ["event": "stop_timeout"])
    }
    // Answers are written on the event loops after `handle` returns: one pass over every
    // loop lets those writes happen before the loops shut down.
    for loop in group.makeIterator() {
      try? await loop.submit {}.get()
    }
  }
}

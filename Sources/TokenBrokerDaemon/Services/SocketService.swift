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

  /// How long connections accepted before the close have to send their first request.
  static let firstRequestGrace: Duration = .milliseconds(250)

  func run() async throws {
    try? await gracefulShutdown()
    await onStopping()
    await server.close()
    // A connection accepted just before the close may not have sent its request yet: give
    // such requests a moment to arrive and be tracked, or the process would exit under a
    // client that did nothing wrong (a restart under load, README "Restarts and upgrades").
    // New clients meanwhile wait in the socket unit's queue for the next process.
    try? await Task.sleep(for: Self.firstRequestGrace)
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

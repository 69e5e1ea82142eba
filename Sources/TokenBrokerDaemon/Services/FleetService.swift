import Logging
import ServiceLifecycle
import TokenBrokerEngine

/// The fleet's store under `[fleet]` (README "Fleet"): the fleet helper runs (and is started
/// again when it dies), its announcements reach the engines, and every 10 s the engines read
/// their rows (the fallback for a lost announcement), until the group shuts down
/// (last: the engines' final commits go through it). A store that cannot be used for good (a
/// wrong key, a missing grant) is reported; the daemon keeps serving the tokens it has, and
/// shared refresh tokens wait, as with an unreachable store.
struct FleetService: Service {
  let store: FleetProcessStore
  let member: FleetMember
  let broker: Broker
  let logger: Logger

  func run() async throws {
    // Until the group shuts down, even when the store gave up: a service that returns early
    // would stop the daemon.
    defer { logger.debug("fleet service ended", metadata: ["event": "fleet_stopped"]) }
    await cancelWhenGracefulShutdown {
      await withTaskGroup(of: Void.self) { group in
        group.addTask { await store.run() }
        group.addTask { await member.follow(broker, logger: logger) }
        group.addTask { await member.poll(broker, clock: broker.environment.clock) }
        await group.waitForAll()
      }
    }
    try? await gracefulShutdown()
  }
}

import NIOPosix

/// Blocking system calls (fsync, file reads, NSS lookups) run here, on NIO's shared
/// blocking pool, never on Swift's cooperative pool: that pool has one thread per core
/// (two on a small VM), and one slow fsync there would stall every actor, status answer
/// and the watchdog probe.
package enum BlockingIO {
  package static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T)
    async throws(E) -> T
  {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
      // Run even when the pool reports it is shutting down: a durable write is never dropped.
      NIOThreadPool.singleton.submit { _ in
        continuation.resume(returning: Result { () throws(E) -> T in try body() })
      }
    }
    return try result.get()
  }
}

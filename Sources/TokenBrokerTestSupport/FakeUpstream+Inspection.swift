import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Observables of the grant family for the reliability suites (crash consistency):
/// which refresh tokens the fake upstream would still accept right now.
extension FakeUpstream {
  /// Refresh tokens the server would accept now (empty once the family is revoked).
  package var validRefreshTokens: Set<String> { state.withLockedValue { $0.validRefresh } }

  /// Whether `token` would be accepted by the next refresh request.
  package func acceptsRefreshToken(_ token: String) -> Bool {
    state.withLockedValue { $0.validRefresh.contains(token) }
  }

  /// The last refresh token the server issued (or seeded), if any.
  package var lastIssuedRefreshToken: String? { state.withLockedValue { $0.issuedRefresh.last } }

  /// Refresh tokens revoked by reuse detection.
  package var revokedRefreshTokens: Set<String> { state.withLockedValue { $0.revokedRefresh } }
}

/// The fake upstream served on its own listener that counts connections, so a
/// crash test can wait until every request a killed client had sent is processed
/// (the kernel still delivers what a dead process wrote).
package final class TrackedUpstreamServer: Sendable {
  let channel: any Channel
  let counts: NIOLockedValueBox<(open: Int, accepted: Int)>
  package let upstream: FakeUpstream

  init(channel: any Channel, counts: NIOLockedValueBox<(open: Int, accepted: Int)>, upstream: FakeUpstream) {
    self.channel = channel
    self.counts = counts
    self.upstream = upstream
  }

  package var port: Int { channel.localAddress?.port ?? 0 }
  package var tokenURL: String { "http://127.0.0.1:\(port)\(upstream.dialect.path)" }
  package var openConnections: Int { counts.withLockedValue { $0.open } }
  package var acceptedConnections: Int { counts.withLockedValue { $0.accepted } }

  /// Returns true once no connection is open and the listener's event loop went
  /// round twice with none, or false after `timeout` seconds.
  package func quiesce(timeout: Double) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    var quietRounds = 0
    while ContinuousClock.now < deadline {
      if openConnections == 0 {
        try? await channel.eventLoop.submit {}.get()
        quietRounds += 1
        if quietRounds >= 3 { return true }
      } else {
        quietRounds = 0
        try? await Task.sleep(for: .milliseconds(1))
      }
    }
    return false
  }

  package func close() async {
    try? await channel.close()
  }
}

extension FakeUpstream {
  /// Serves this upstream on a new listener on 127.0.0.1 (a free port) that counts
  /// connections; the same handler as `start`.
  package func startTracked(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
    -> TrackedUpstreamServer
  {
    let counts = NIOLockedValueBox((open: 0, accepted: 0))
    let ch = try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .serverChannelOption(.backlog, value: 256)
      .childChannelInitializer { channel in
        counts.withLockedValue {
          $0.open += 1
          $0.accepted += 1
        }
        channel.closeFuture.whenComplete { _ in counts.withLockedValue { $0.open -= 1 } }
        return channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(FakeUpstreamHandler(upstream: self))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    return TrackedUpstreamServer(channel: ch, counts: counts, upstream: self)
  }
}

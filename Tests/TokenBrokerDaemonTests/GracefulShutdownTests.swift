import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Testing
import TokenBrokerAPI
import TokenBrokerClient
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer
import TokenBrokerTestSupport
import TokenBrokerUpstream

@testable import TokenBrokerDaemon

/// The daemon's services under a real ServiceGroup, in process: a graceful shutdown stops
/// accepting, answers the request in flight, lets the refresh on the wire finish and keeps
/// the refresh token it rotated.
@Suite struct GracefulShutdownTests {
  @Test func aGracefulShutdownAnswersTheRequestInFlightAndKeepsTheRotation() async throws {
    let clock = ManualClock()
    let upstream = FakeUpstream(.powerverse, now: { clock.now() })
    try await upstream.start()
    let (p, secrets) = SeedProviders.rotating("pv", for: upstream, seed: "rt_seed_shutdown")
    let dir = try TempDirectory.make("tb-gs")
    let socketDir = try TempDirectory.make("tb-gs-sock")
    var settings = BrokerSettings.testDefaults
    settings.stateDir = dir
    settings.socket = socketDir + "/broker.sock"
    let config = BrokerConfig(broker: settings, providers: [p])
    let logs = LogCapture()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let transport = HTTPTokenTransport(eventLoopGroup: group)
    let gate = GatedTransport(transport)
    let env = EngineEnvironment(
      transport: gate, clock: clock, store: StateStore(directory: dir), logger: logs.logger(), random: { 0.5 }
    )
    let app = BrokerApp.compose(
      LoadedConfig(
        config: config, secrets: ["pv": secrets], access: AccessResolver.resolve(config).0, warnings: []),
      environment: env, logger: logs.logger())
    let server = try await HTTPServer.start(
      .unix(path: settings.socket), group: group, handler: app.handler, logger: logs.logger())
    let stopping = LockedFlag()
    let services = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: [
          EngineService(broker: app.broker, settleTimeout: 10, logger: logs.logger()),
          SocketService(
            server: server, tracker: app.handler, group: group, drainTimeout: 10, logger: logs.logger()
          ) { stopping.set() },
        ],
        logger: logs.logger()))
    let running = Task { try await services.run() }
    for e in app.broker.engines { await e.awaitFirstAttempt() }
    await app.broker.settle()

    gate.close()
    let socket = settings.socket
    // The blocking clients run on threads of their own (offload): blocking the cooperative
    // pool would starve the broker under test, and every other test of the process.
    let refresh = Task { () -> UnixHTTPClient.Response? in
      try? await offload {
        var client = UnixHTTPClient(socketPath: socket)
        client.timeout = 20
        return try client.request("POST", "/v1/providers/pv/refresh")
      }
    }
    await gate.awaitArrivals(2)  // the refresh is on the wire, its caller waiting
    await services.triggerGracefulShutdown()
    // STOPPING=1 comes first, then the listening socket is closed and its path removed.
    try await until("the socket to quiesce") { stopping.isSet && access(socket, F_OK) != 0 }
    // No new connections once the socket quiesces...
    let stranger = try await offload { () -> String? in
      var client = UnixHTTPClient(socketPath: socket)
      client.timeout = 5
      do {
        return "answered \(try client.request("GET", "/v1/status").status)"
      } catch {
        return nil
      }
    }
    #expect(stranger == nil, "a connection made after the socket quiesced was \(stranger ?? "")")
    // ...but the request already received is answered, and the rotation kept.
    gate.open()
    let answer = await refresh.value
    #expect(answer?.status == 200)
    try await running.value
    #expect(try StateStore(directory: dir).load("pv")?.refreshToken == upstream.issuedRefreshTokens.last)
    #expect(!upstream.familyRevoked)
    await transport.shutdown()
    try await group.shutdownGracefully()
    await upstream.stop()
  }
}

/// Set once, read from anywhere.
final class LockedFlag: Sendable {
  private let box = NIOLockedValueBox(false)
  func set() { box.withLockedValue { $0 = true } }
  var isSet: Bool { box.withLockedValue { $0 } }
}

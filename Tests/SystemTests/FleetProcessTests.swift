import Foundation
import Glibc
import Testing
import TokenBrokerClient
import TokenBrokerTestSupport

extension SystemSuite {
  /// Three token-brokerd processes share one rotating credential through a real PostgreSQL
  /// (README "Fleet"): each runs its fleet helper, the fake upstream counts requests and
  /// revokes the grant when a refresh token is presented twice.
  @Suite(
    "Fleet of real brokers on PostgreSQL",
    .enabled(if: PostgresFixture.isAvailable, "needs root and PostgreSQL 15 (make deps installs it)"))
  struct FleetProcessTests {
    final class Fleet: Sendable {
      let pg: PostgresFixture
      let upstream: FakeUpstream
      let dir: TempDirectory
      let brokers: [ChildProcess]
      let clients: [BrokerClient]

      init(pg: PostgresFixture, upstream: FakeUpstream, dir: TempDirectory, brokers: [ChildProcess]) {
        self.pg = pg
        self.upstream = upstream
        self.dir = dir
        self.brokers = brokers
        clients = (1...brokers.count).map { BrokerClient(socketPath: dir.file("b\($0).sock")) }
      }

      func tokens() async throws -> [String] {
        var out: [String] = []
        for c in clients { out.append(try await c.token("pv")) }
        return out
      }

      func fleetStatus(_ i: Int) async throws -> [String: Any] {
        let status = try clients[i].json(try await clients[i].request("GET", "/v1/status"))
        let providers = status["providers"] as? [[String: Any]] ?? []
        return providers.first { $0["name"] as? String == "pv" }?["fleet"] as? [String: Any] ?? [:]
      }

      func stop() async {
        for b in brokers { _ = b.stop() }
        await upstream.stop()
        pg.teardown()
      }
    }

    static func start(_ count: Int, lease: Int? = nil, rotating: Bool = true) async throws -> Fleet {
      let pg = try await PostgresFixture.start()
      var settings = FakeUpstream.Settings()
      settings.rotateRefreshTokens = rotating
      let upstream = FakeUpstream(.powerverse, settings: settings, now: { Date().timeIntervalSince1970 })
      try await upstream.start()
      upstream.seedRefreshToken("rt_fleet_seed")
      let dir = try TempDirectory("tbfleet")
      let (dsn, keyFile) = try FleetConfig.writeSecrets(dsn: pg.dsn, in: dir)
      var brokers: [ChildProcess] = []
      for i in 1...count {
        let config = try dir.write(
          "b\(i).toml",
          brokerTable([
            "socket = \"\(dir.file("b\(i).sock"))\"", "state_dir = \"\(dir.file("state-b\(i)"))\"",
            "log_target = \"console\"", "log_level = \"debug\"", "request_timeout = 2",
          ])
            + FleetConfig.rotatingProvider(upstream, seed: "rt_fleet_seed")
            + FleetConfig.table(dsnFile: dsn, keyFile: keyFile, node: "b\(i)", lease: lease))
        let notify = try NotifyListener(path: dir.file("notify-b\(i)"))
        let broker = try ChildProcess(
          try BuiltBinaries.tokenBrokerd, ["--config", config], environment: ["NOTIFY_SOCKET": notify.path],
          outputIn: dir, name: "b\(i)")
        try broker.start()
        try await offload { try notify.wait(for: "READY=1", within: 30) }
        brokers.append(broker)
      }
      return Fleet(pg: pg, upstream: upstream, dir: dir, brokers: brokers)
    }

    /// One upstream request per token lifetime for the whole fleet: the first broker refreshes
    /// with the seed, the others take its token; a refresh on any broker reaches the others by
    /// NOTIFY; no refresh token is presented twice; the database holds only ciphertext.
    @Test func threeBrokersShareOneTokenAndOneRefresher() async throws {
      let f = try await Self.start(3)
      do {
        #expect(f.upstream.requestCount == 1, "\(f.upstream.requests.map(\.json))")
        let first = try await f.tokens()
        #expect(Set(first).count == 1 && f.upstream.issuedAccessTokens.contains(first[0]), "\(first)")
        for (round, refresher) in [1, 2, 0].enumerated() {
          let answer = try await f.clients[refresher].request("POST", "/v1/providers/pv/refresh")
          #expect(answer.status == 200, "\(answer.text)")
          #expect(f.upstream.requestCount == 2 + round)
          let issued = try #require(f.upstream.issuedAccessTokens.last)
          // The others take it from the announcement.
          try await offload {
            try poll("every broker to serve the new token") {
              var all: [String] = []
              for c in f.clients {
                let r = try UnixHTTPClient(socketPath: c.socketPath).request("GET", "/v1/token/pv")
                all.append(String(decoding: r.body, as: UTF8.self))
              }
              return all.allSatisfy { $0.contains(issued) }
            }
          }
          #expect(try await f.fleetStatus(refresher)["role"] as? String == "refresher")
          let other = (refresher + 1) % 3
          let follower = try await f.fleetStatus(other)
          #expect(
            follower["role"] as? String == "follower" && follower["holder"] as? String == "b\(refresher + 1)")
          #expect(follower["store"] as? String == "ok")
        }
        #expect(f.upstream.requestCount == 4)
        #expect(!f.upstream.familyRevoked)
        let presented = f.upstream.requests.compactMap { $0.json["refresh_token"] }
        #expect(Set(presented).count == presented.count, "a refresh token was presented twice")
        // The database holds ciphertext only: neither token appears in a dump of the table.
        let dump = try await f.pg.psql(
          "SELECT encode(at_ct, 'escape') || coalesce(encode(rt_ct, 'escape'), '') FROM token_broker_credentials"
        )
        for secret in f.upstream.issuedAccessTokens + f.upstream.issuedRefreshTokens {
          #expect(!dump.contains(secret))
        }
        for b in f.brokers {
          for secret in f.upstream.issuedAccessTokens + f.upstream.issuedRefreshTokens {
            #expect(!b.stderr.contains(secret), "a token reached the log of \(b.stderrTail())")
          }
        }
      } catch {
        await f.stop()
        throw error
      }
      await f.stop()
    }

    /// PostgreSQL stopped: valid tokens are served, the store is `unreachable`, the rotating
    /// refresh token is not used by anyone; started again: one refresh for the fleet.
    @Test func theStoreStoppedAndStartedAgain() async throws {
      let f = try await Self.start(2)
      do {
        let held = try await f.tokens()
        try await f.pg.stop()
        let requests = f.upstream.requestCount
        _ = try await f.clients[0].request("POST", "/v1/providers/pv/refresh")
        #expect(f.upstream.requestCount == requests)
        for (i, c) in f.clients.enumerated() {
          let r = try await c.request("GET", "/v1/token/pv")
          #expect(r.status == 200, "b\(i + 1): \(r.text) \(f.brokers[i].stderrTail(30))")
        }
        #expect(try await f.tokens() == held)
        #expect(try await f.fleetStatus(0)["store"] as? String == "unreachable")
        try await f.pg.start()
        // Back (the driver's reconnection is bounded, not timed): a refresh goes through once.
        try await offload {
          try poll("a refresh once the store is back", within: 120, every: 1) {
            let r = try UnixHTTPClient(socketPath: f.clients[0].socketPath).request(
              "POST", "/v1/providers/pv/refresh")
            _ = r
            return f.upstream.requestCount > requests
          }
        }
        #expect(f.upstream.requestCount == requests + 1)
        #expect(!f.upstream.familyRevoked)
        // The helpers stayed up through it all (the database going away is not their end).
        for b in f.brokers { #expect(!b.stderr.contains("fleet_helper_ended"), "\(b.stderrTail(20))") }
        try await offload {
          try poll("the other broker to follow") {
            let r = try UnixHTTPClient(socketPath: f.clients[1].socketPath).request("GET", "/v1/token/pv")
            return String(decoding: r.body, as: UTF8.self).contains(f.upstream.issuedAccessTokens.last ?? "-")
          }
        }
      } catch {
        await f.stop()
        throw error
      }
      await f.stop()
    }

    /// A refresher paused (SIGSTOP) past its lease, then resumed: another broker took the
    /// refresh over meanwhile, and the paused one's commit is refused (fenced), writes
    /// nothing, and it follows the fleet. Here the pause holds its commit in its helper, and
    /// the provider's refresh tokens do not rotate, so it answers both: with rotation that is
    /// the replay README "Fleet" says no fence can stop, only a provider's grace window.
    @Test func aPausedRefresherIsFencedWhenItResumes() async throws {
      let f = try await Self.start(2, lease: 6, rotating: false)
      do {
        let before = f.upstream.requestCount
        f.upstream.failNext(.delayed(0.5))
        let helper = try #require(Spawn.children(of: f.brokers[0].pid).first, "b1's fleet helper")
        let paused = Task { try? await f.clients[0].request("POST", "/v1/providers/pv/refresh") }
        try await offload {
          try poll("b1's refresh to reach the upstream") { f.upstream.requestCount > before }
        }
        kill(helper, SIGSTOP)
        // b2 takes over once b1's claim lapsed on the database's clock.
        try await offload {
          try poll("b2 to take the refresh over", within: 30, every: 0.2) {
            let r = try UnixHTTPClient(socketPath: f.clients[1].socketPath).request(
              "POST", "/v1/providers/pv/refresh")
            return r.status == 200 && f.upstream.requestCount > before + 1
          }
        }
        let b2Token = try await f.clients[1].token("pv")
        kill(helper, SIGCONT)
        _ = await paused.value
        try await offload {
          // The daemon's own line (its helper logs the refused statement too).
          try poll("b1's commit to be fenced") {
            f.brokers[0].stderr.contains("<3>fenced: this broker's claim")
          }
        }
        // Nothing written over: the fleet's token is b2's, and b1 serves it too.
        #expect(try await f.clients[0].token("pv") == b2Token)
        let status = try await f.fleetStatus(0)
        #expect(status["holder"] as? String == "b2", "\(status)")
        let metrics = String(decoding: try await f.clients[0].request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("token_broker_fleet_fenced_writes 1"), "\(metrics)")
      } catch {
        await f.stop()
        throw error
      }
      await f.stop()
    }

    /// The refresher killed with SIGKILL while its refresh is on the wire: its claim lapses on
    /// the database's clock and another broker takes over within the lease.
    @Test func aRefresherKilledMidRefreshIsTakenOverWithinTheLease() async throws {
      // The upstream holds the killed broker's request unanswered (and unprocessed): a request
      // it had answered would be the reuse README "Fleet" says no fence can prevent.
      let f = try await Self.start(2, lease: 6)
      do {
        let before = f.upstream.requestCount
        f.upstream.failNext(.stall)
        let doomed = Task { try? await f.clients[0].request("POST", "/v1/providers/pv/refresh") }
        try await offload {
          try poll("the refresh to reach the upstream") { f.upstream.requestCount > before }
        }
        f.brokers[0].send(SIGKILL)
        _ = await doomed.value
        try await offload {
          try poll("b2 to take the refresh over", within: 30, every: 0.2) {
            let r = try UnixHTTPClient(socketPath: f.clients[1].socketPath).request(
              "POST", "/v1/providers/pv/refresh")
            return r.status == 200 && f.upstream.requestCount > before + 1
          }
        }
        #expect(!f.upstream.familyRevoked)
        #expect(f.brokers[1].stderr.contains("took the refresh of pv over from b1, whose claim lapsed"))
        #expect(try await f.fleetStatus(1)["role"] as? String == "refresher")
        #expect(try await f.clients[1].token("pv") == f.upstream.issuedAccessTokens.last)
      } catch {
        await f.stop()
        throw error
      }
      await f.stop()
    }
  }
}

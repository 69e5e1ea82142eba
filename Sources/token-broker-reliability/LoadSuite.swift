import Foundation
import NIOConcurrencyHelpers
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// N concurrent clients against the real daemon: a burst of R requests as fast as the
/// daemon answers, then a soak of S seconds at a steady rate, with the daemon's RSS,
/// descriptors and threads sampled throughout. Every answer is checked (a token the
/// upstream issued, the API key, a status); zero errors and a flat RSS pass.
final class LoadSuite {
  struct Options {
    var clients = 1024
    var requests = 1_000_000
    var soak = 600.0
    var soakRate = 2000.0
    var churnEvery = 8
    var sampleInterval = 10.0
    var lifetime = 60
    var daemon: String?
    var keep = false
  }

  struct Sample {
    var t: Double
    var phase: String
    var rssKiB: Int
    var fds: Int
    var threads: Int
  }

  struct Result {
    var stats: LoadClient.Stats
    var burstSeconds: Double
    var soakRequests: Int
    var samples: [Sample]
    var rssFlat: Bool
    var rssGrowthKiB: Int
    var upstreamRequests: Int
    var daemonExit: String
    var failures: [String]
  }

  let options: Options
  static let apiKey = "ak_load_5f4dcc3b5aa765d61d8327"

  init(options: Options) { self.options = options }

  func run() throws -> Result {
    raiseDescriptorLimit()
    let daemonPath = try options.daemon ?? BuiltBinaries.path("token-brokerd")
    let dir = try TempDirectory.make("tbr-load")
    defer { if !options.keep { try? FileManager.default.removeItem(atPath: dir) } }
    var settings = FakeUpstream.Settings()
    settings.lifetime = options.lifetime
    let upstream = FakeUpstream(.energy, settings: settings, now: { Date().timeIntervalSince1970 })
    try Blocking.wait { try await upstream.start() }
    defer { Blocking.waitQuietly { await upstream.stop() } }

    var config = DaemonConfig(socket: dir + "/s", stateDir: dir + "/state")
    config.minValid = max(1, options.lifetime / 6)
    config.logLevel = "notice"
    config.providers = [
      """
      [providers.energy]
      token_url = "\(upstream.tokenURL)"
      grant = "client_credentials"
      client_id = "\(settings.clientID)"
      client_secret = "\(settings.clientSecret)"
      """,
      """
      [providers.keys]
      grant = "api_key"
      api_key = "\(Self.apiKey)"
      """,
    ]
    try TempDirectory.write(dir + "/broker.toml", config.text)
    let daemon = DaemonProcess(
      executable: daemonPath, arguments: ["--config", dir + "/broker.toml"], logPath: dir + "/daemon.log")
    try daemon.start()
    defer { daemon.kill9() }
    let api = SocketAPIClient(socketPath: config.socket)
    let state = try api.waitSettled("energy", daemon: daemon, timeout: 30)
    guard state == "ok" else { throw SetupError("the daemon came up \(state):\n\(daemon.logTail())") }

    // Tokens seen are checked against what the upstream issued (re-read on a miss).
    var known = Set(upstream.issuedAccessTokens)
    let isIssued: (String) -> Bool = { token in
      if known.contains(token) { return true }
      known = Set(upstream.issuedAccessTokens)
      return known.contains(token)
    }
    let client = LoadClient(
      socketPath: config.socket, clients: options.clients, churnEvery: options.churnEvery,
      apiKey: Self.apiKey,
      isIssued: isIssued)

    let sampler = Sampler(daemon: daemon, interval: options.sampleInterval)
    sampler.start()
    log(
      "load: \(options.clients) clients, \(options.requests) requests, then a \(Int(options.soak)) s soak at \(Int(options.soakRate)) req/s"
    )
    let t0 = monotonic()
    var lastReport = t0
    client.run(total: options.requests, until: nil, rate: 0) { s in
      if monotonic() - lastReport >= 10 {
        lastReport = monotonic()
        log(
          "load: burst: \(s.completed) answered, \(s.errors) errors, \(Int(Double(s.completed) / (lastReport - t0))) req/s"
        )
      }
    }
    let burstSeconds = monotonic() - t0
    let afterBurst = client.stats.completed + client.stats.errors
    log(
      "load: burst done: \(client.stats.completed) answered in \(String(format: "%.1f", burstSeconds)) s (\(Int(Double(client.stats.completed) / burstSeconds)) req/s), \(client.stats.errors) errors"
    )
    sampler.phase = "soak"
    if options.soak > 0 {
      let t1 = monotonic()
      client.run(total: nil, until: t1 + options.soak, rate: options.soakRate) { s in
        if monotonic() - lastReport >= 60 {
          lastReport = monotonic()
          let rss = daemon.rssKiB.map { "\($0 / 1024) MiB" } ?? "?"
          log("load: soak \(Int(lastReport - t1)) s: \(s.completed) answered, \(s.errors) errors, RSS \(rss)")
        }
      }
    }
    sampler.stop()
    var failures: [String] = []
    if daemon.hasExited {
      failures.append("the daemon died under load (\(daemon.exitDescription)):\n\(daemon.logTail())")
    }
    let stop = daemon.terminate(timeout: 30)
    let exit = daemon.exitDescription
    if stop == nil || exit != "exit 0" {
      failures.append("the daemon did not stop cleanly on SIGTERM (\(exit))")
    }
    let stats = client.stats
    if stats.errors > 0 { failures.append("\(stats.errors) errors: \(stats.errorKinds)") }
    let (flat, growth) = Self.flatness(sampler.samples.filter { $0.phase == "soak" })
    if options.soak >= 60 && !flat {
      failures.append("RSS grew \(growth) KiB over the soak")
    }
    return Result(
      stats: stats, burstSeconds: burstSeconds, soakRequests: stats.completed + stats.errors - afterBurst,
      samples: sampler.samples, rssFlat: flat, rssGrowthKiB: growth, upstreamRequests: upstream.requestCount,
      daemonExit: exit, failures: failures)
  }

  /// Flat: the median RSS of the last quarter of the soak is within max(4 MiB, 5 %) of the
  /// median of its first quarter (the first 10 % left out as warm-up).
  static func flatness(_ samples: [Sample]) -> (Bool, Int) {
    let usable = Array(samples.dropFirst(samples.count / 10))
    guard usable.count >= 4 else { return (true, 0) }
    let quarter = max(1, usable.count / 4)
    func median(_ s: ArraySlice<Sample>) -> Int {
      let sorted = s.map(\.rssKiB).sorted()
      return sorted[sorted.count / 2]
    }
    let first = median(usable.prefix(quarter))
    let last = median(usable.suffix(quarter))
    let growth = last - first
    return (growth <= max(4096, first / 20), growth)
  }
}

/// Samples the daemon's RSS, descriptors and threads on a thread of its own.
final class Sampler: @unchecked Sendable {
  let daemon: DaemonProcess
  let interval: Double
  private let lock = NIOLock()
  private var _samples: [LoadSuite.Sample] = []
  private var _phase = "burst"
  private var stopped = false
  private let done = DispatchSemaphore(value: 0)
  private let start0 = monotonic()
  private let pid: pid_t

  init(daemon: DaemonProcess, interval: Double) {
    self.daemon = daemon
    self.interval = interval
    pid = daemon.pid
  }

  var samples: [LoadSuite.Sample] { lock.withLock { _samples } }
  var phase: String {
    get { lock.withLock { _phase } }
    set { lock.withLock { _phase = newValue } }
  }

  func start() {
    Thread {
      while !self.lock.withLock({ self.stopped }) {
        self.take()
        var slept = 0.0
        while slept < self.interval && !self.lock.withLock({ self.stopped }) {
          sleepMilliseconds(100)
          slept += 0.1
        }
      }
      self.take()
      self.done.signal()
    }.start()
  }

  private func take() {
    guard let rss = DaemonProcess.procStatus(pid, "VmRSS") else { return }
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count ?? -1
    let threads = DaemonProcess.procStatus(pid, "Threads") ?? -1
    lock.withLock {
      _samples.append(
        LoadSuite.Sample(t: monotonic() - start0, phase: _phase, rssKiB: rss, fds: fds, threads: threads))
    }
  }

  func stop() {
    lock.withLock { stopped = true }
    done.wait()
  }
}

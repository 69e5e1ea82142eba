import Foundation
import Logging
import NIOCore
import NIOEmbedded
import TokenBrokerAPI
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerServer

/// The real request handling of the broker's socket on an `EmbeddedChannel`: the
/// pipeline `HTTPServer` installs on every connection, over a `SocketAPI` whose
/// broker has an API-key provider and a client-credentials provider with scopes
/// (answered by an in-memory upstream), a frozen clock and a scratch state dir.
final class HTTPFuzzHarness: Sendable {
  static let shared = HTTPFuzzHarness()

  static let apiKey = "ak_fuzz_SECRET_7f3a9c1e5b2d"
  static let clientSecret = "cs_fuzz_SECRET_d41d8cd98f00"
  static let accessToken = "at_fuzz_TOKEN_0a1b2c3d4e5f"

  static let root = PeerCredentials(pid: 1, uid: 0, gid: 0, groups: [])
  /// A uid that no provider allows and that is no admin.
  static let stranger = PeerCredentials(pid: 2, uid: 4242, gid: 4242, groups: [4243])

  let broker: Broker
  let handler: BlockingRequestHandler
  /// `TOKEN_BROKER_FUZZ_VERBOSE=1`: print each answer's status line (to see what a corpus reaches).
  let verbose = ProcessInfo.processInfo.environment["TOKEN_BROKER_FUZZ_VERBOSE"] != nil

  init() {
    let stateDir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "tb-fuzz-state-\(getpid())"
    ).path
    try? FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    var settings = BrokerSettings()
    settings.stateDir = stateDir
    settings.socket = stateDir + "/fuzz.sock"
    settings.admins = [.uid(1000)]

    var keys = ProviderConfig(name: "keys", tokenURL: "", grant: .apiKey)
    keys.apiKey = .literal(Self.apiKey)
    keys.allow = [.uid(1000)]
    var energy = ProviderConfig(
      name: "energy", tokenURL: "https://fuzz.invalid/oauth/token", grant: .clientCredentials)
    energy.clientID = "fuzz-client"
    energy.clientSecret = .literal(Self.clientSecret)
    energy.scopes = ["read"]
    energy.allowedScopes = ["read", "write", "admin"]
    energy.allow = [.uid(1000), .gid(1000)]

    let config = BrokerConfig(broker: settings, providers: [energy, keys])
    let secrets = [
      "keys": ResolvedSecrets(apiKey: Self.apiKey),
      "energy": ResolvedSecrets(clientSecret: Self.clientSecret),
    ]
    let logger = Logger(label: "token-broker.fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    let environment = EngineEnvironment(
      transport: InMemoryUpstream(), clock: FrozenClock(), store: StateStore(directory: stateDir),
      logger: logger, random: { 0.5 })
    let (access, _) = AccessResolver.resolve(config)
    let app = BrokerApp.compose(
      LoadedConfig(config: config, secrets: secrets, access: access, warnings: []), environment: environment,
      logger: logger)
    let broker = app.broker
    Blocking.wait {
      await broker.start()
      _ = await broker.awaitFirstAttempts(timeout: 10)
    }
    self.broker = broker
    self.handler = BlockingRequestHandler(inner: app.api)
  }

  func run(_ bytes: [UInt8]) {
    feed(bytes, as: Self.root, chunk: bytes.count)
    feed(bytes, as: Self.stranger, chunk: 7)
  }

  private func feed(_ bytes: [UInt8], as peer: PeerCredentials, chunk: Int) {
    let channel = EmbeddedChannel()
    do {
      try HTTPServer.installConnectionPipeline(on: channel, handler: handler, peer: peer)
      try channel.connect(to: SocketAddress(unixDomainSocketPath: "/run/fuzz.sock")).wait()
    } catch {
      FuzzCheck.violated("cannot set up the server pipeline: \(error)", input: bytes)
    }
    var offset = 0
    let step = max(1, chunk)
    while offset < bytes.count, channel.isActive {
      let end = min(bytes.count, offset + step)
      // An error that reaches the end of the pipeline is logged and dropped by a real
      // channel; what matters is what was answered.
      _ = try? channel.writeInbound(channel.allocator.buffer(bytes: bytes[offset..<end]))
      offset = end
    }
    // The request deadline (408 for an unfinished request), then the idle timeout.
    channel.embeddedEventLoop.advanceTime(by: .seconds(11))
    channel.embeddedEventLoop.advanceTime(by: .seconds(61))
    channel.embeddedEventLoop.run()
    var wire: [UInt8] = []
    while let part = try? channel.readOutbound(as: ByteBuffer.self) {
      wire += part.readableBytesView
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    guard let responses = WireResponse.split(wire) else {
      FuzzCheck.violated("bytes on the wire that are not HTTP/1.1 answers", input: bytes)
    }
    if verbose {
      print("  uid \(peer.uid): " + responses.map { "\($0.status)" }.joined(separator: " "))
    }
    check(responses, input: bytes)
  }

  private func check(_ responses: [WireResponse], input: [UInt8]) {
    let secret = Array(Self.clientSecret.utf8)
    let key = Array(Self.apiKey.utf8)
    let token = Array(Self.accessToken.utf8)
    for r in responses {
      let code = r.status
      if code >= 500 { FuzzCheck.violated("answered \(code)", input: input) }
      if FuzzCheck.contains(r.body, secret) || FuzzCheck.contains(r.head, secret) {
        FuzzCheck.violated("the client secret appears in a \(code) answer", input: input)
      }
      if FuzzCheck.contains(r.head, key) || FuzzCheck.contains(r.head, token) {
        FuzzCheck.violated("a token appears in a header of a \(code) answer", input: input)
      }
      if FuzzCheck.contains(r.body, key) || FuzzCheck.contains(r.body, token) {
        let tokenAnswer =
          code == 200
          && (r.body.starts(with: Array(#"{"provider":"#.utf8)) || r.body == key || r.body == token)
        if !tokenAnswer {
          FuzzCheck.violated("a token appears in a \(code) answer that is not one", input: input)
        }
      }
    }
  }
}

/// One answer as it left on the wire.
struct WireResponse {
  var status: Int
  /// The status line and header fields.
  var head: [UInt8]
  var body: [UInt8]

  /// `wire` cut into answers: each a status line `HTTP/1.1 NNN reason`, header fields, a
  /// blank line and exactly `Content-Length` bytes (none without it, as for HEAD); nil
  /// when the bytes are anything else, or leave something over.
  static func split(_ wire: [UInt8]) -> [WireResponse]? {
    var out: [WireResponse] = []
    var rest = wire[...]
    let blank = Array("\r\n\r\n".utf8)
    while !rest.isEmpty {
      guard rest.starts(with: Array("HTTP/1.1 ".utf8)), rest.count >= 12,
        let status = Int(String(decoding: rest.dropFirst(9).prefix(3), as: UTF8.self)),
        let end = firstIndex(of: blank, in: rest)
      else { return nil }
      let head = Array(rest[rest.startIndex..<end])
      rest = rest[(end + blank.count)...]
      var length = 0
      for line in String(decoding: head, as: UTF8.self).split(separator: "\r\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        if line[..<colon].lowercased() == "content-length" {
          guard let n = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)) else {
            return nil
          }
          length = n
        }
      }
      guard rest.count >= length else { return nil }
      out.append(WireResponse(status: status, head: head, body: Array(rest.prefix(length))))
      rest = rest.dropFirst(length)
    }
    return out
  }

  private static func firstIndex(of needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
    guard hay.count >= needle.count else { return nil }
    for i in hay.startIndex...(hay.endIndex - needle.count)
    where hay[i..<(i + needle.count)].elementsEqual(needle) {
      return i
    }
    return nil
  }
}

/// Answers every request on the calling thread: a cached token at once, anything else by
/// waiting for `SocketAPI.handle` (which needs no event loop), so one input is handled
/// deterministically within one call. The async path of the connection handler is what
/// the socket tests cover.
final class BlockingRequestHandler: ServerRequestHandler {
  let inner: SocketAPI

  init(inner: SocketAPI) { self.inner = inner }

  func respondImmediately(to request: ServerRequest) -> ServerResponse? {
    if let cached = inner.respondImmediately(to: request) { return cached }
    let inner = self.inner
    return Blocking.wait { await inner.handle(request) }
  }

  func handle(_ request: ServerRequest) async -> ServerResponse {
    await inner.handle(request)
  }
}

/// The token endpoint of the fuzzed broker: every request gets the same long-lived token.
struct InMemoryUpstream: TokenTransport {
  func send(
    _ request: TokenRequest, caFile: String?, proxy: UpstreamProxy?, timeout: Double
  ) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    let body =
      #"{"access_token":"\#(HTTPFuzzHarness.accessToken)","token_type":"Bearer","expires_in":100000}"#
    return UpstreamResponse(
      status: 200, headers: ["Content-Type": "application/json"], body: Array(body.utf8))
  }
}

/// Time stands still; timers never fire (each input sees the same broker).
struct FrozenClock: BrokerClock {
  struct Never: TimerHandle {
    func cancel() {}
  }

  func now() -> Double { 1_800_000_000 }

  func schedule(at deadline: Double, _ action: @escaping @Sendable () async -> Void) -> any TimerHandle {
    Never()
  }
}

/// Runs async work to completion from synchronous code that is not on the
/// cooperative pool (the fuzzer's thread, a test's dedicated `Thread`).
enum Blocking {
  private final class Box<T>: @unchecked Sendable {
    var value: T?
  }

  @discardableResult
  static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let box = Box<T>()
    Task {
      box.value = await body()
      done.signal()
    }
    done.wait()
    return box.value!
  }
}

import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TokenBrokerCore
import TokenBrokerTestSupport

@testable import TokenBrokerUpstream

#if canImport(Glibc)
  import Glibc
#endif

/// A TCP server on 127.0.0.1 that records each request's raw bytes and answers with the
/// bytes its script returns (nil: say nothing and keep the connection open). With a greeting
/// it writes that as soon as a connection is accepted, and closes.
final class ScriptedServer: Sendable {
  let channel: any Channel
  private let received = NIOLockedValueBox<[String]>([])
  private let open = NIOLockedValueBox((now: 0, most: 0))

  var port: Int { channel.localAddress?.port ?? 0 }
  var requests: [String] { received.withLockedValue { $0 } }
  var mostConnectionsAtOnce: Int { open.withLockedValue { $0.most } }

  init(
    host: String = "127.0.0.1", greeting: [UInt8]? = nil,
    answer: @escaping @Sendable (String) -> (bytes: [UInt8], close: Bool)? = { _ in nil }
  ) async throws {
    let received = self.received
    let open = self.open
    channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.backlog, value: 256)
      .childChannelInitializer { channel in
        open.withLockedValue {
          $0.now += 1
          $0.most = max($0.most, $0.now)
        }
        channel.closeFuture.whenComplete { _ in open.withLockedValue { $0.now -= 1 } }
        return channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            Handler(
              greeting: greeting,
              onRequest: { text in
                received.withLockedValue { $0.append(text) }
                return answer(text)
              }))
        }
      }
      .bind(host: host, port: 0).get()
  }

  func stop() async { try? await channel.close() }

  /// Collects one request (head, and a body of Content-Length bytes), then answers.
  final class Handler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let greeting: [UInt8]?
    let onRequest: @Sendable (String) -> (bytes: [UInt8], close: Bool)?
    private let buffer = NIOLockedValueBox<[UInt8]>([])

    init(greeting: [UInt8]?, onRequest: @escaping @Sendable (String) -> (bytes: [UInt8], close: Bool)?) {
      self.greeting = greeting
      self.onRequest = onRequest
    }

    func channelActive(context: ChannelHandlerContext) {
      context.fireChannelActive()
      guard let greeting else { return }
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: greeting)), promise: nil)
      context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let bytes = Array(buffer: unwrapInboundIn(data))
      let all = buffer.withLockedValue {
        $0 += bytes
        return $0
      }
      let text = String(decoding: all, as: UTF8.self)
      guard let end = text.range(of: "\r\n\r\n") else { return }
      let head = text[..<end.lowerBound].lowercased()
      let length =
        head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
        .flatMap { Int($0.dropFirst("content-length:".count).filter { $0 != " " }) } ?? 0
      guard text.utf8.count - text[..<end.upperBound].utf8.count >= length else { return }
      guard let (reply, close) = onRequest(text) else { return }
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
      if close { context.close(promise: nil) }
    }
  }
}

/// The upstream client on its own, against a server that answers exactly what a test says:
/// what goes on the wire, how answers of every shape are read, and what each failure is called.
@Suite struct HTTPTokenTransportTests {
  static let transport = HTTPTokenTransport(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)

  static func ok(_ body: String, extraHeaders: String = "") -> [UInt8] {
    Array(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(extraHeaders)\r\n\(body)"
        .utf8)
  }

  static func post(_ server: ScriptedServer, path: String = "/oauth/token", body: String = "grant_type=x")
    -> TokenRequest
  {
    TokenRequest(
      url: "http://127.0.0.1:\(server.port)\(path)", headers: [("Accept", "application/json")],
      body: Array(body.utf8), usesRefreshToken: false)
  }

  static func failure(_ request: TokenRequest, timeout: Double = 5) async -> UpstreamFailure? {
    do {
      _ = try await transport.send(request, caFile: nil, timeout: timeout)
      return nil
    } catch {
      return error
    }
  }

  @Test func aPostCarriesHostLengthAndCloseAndTheAnswerIsRead() async throws {
    let server = try await ScriptedServer { _ in
      (Self.ok(#"{"access_token":"a"}"#, extraHeaders: "X-Thing: 1\r\n"), false)
    }
    defer { Task { await server.stop() } }
    let response = try await Self.transport.send(
      Self.post(server, path: "/oauth/token?x=1", body: "grant_type=client_credentials"), caFile: nil,
      timeout: 5)
    #expect(response.status == 200)
    #expect(response.headers["x-thing"] == "1")
    #expect(String(decoding: response.body, as: UTF8.self) == #"{"access_token":"a"}"#)
    let sent = try #require(server.requests.first)
    #expect(sent.hasPrefix("POST /oauth/token?x=1 HTTP/1.1\r\n"))
    #expect(sent.contains("Host: 127.0.0.1:\(server.port)\r\n"))
    #expect(sent.contains("Content-Length: 29\r\n"))
    #expect(sent.contains("Connection: close\r\n"))
    #expect(sent.contains("Accept: application/json\r\n"))
    #expect(sent.hasSuffix("\r\n\r\ngrant_type=client_credentials"))
  }

  /// Whether this machine has an IPv6 loopback to listen on (a container may have none):
  /// without one the IPv6 test is reported as skipped, not passed.
  static let hasIPv6Loopback: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
      }
    }
    return bound == 0
  }()

  /// An IPv6 address in brackets: connected to as it is, and `Host:` keeps the brackets.
  @Test(.enabled(if: hasIPv6Loopback, "this machine has no IPv6 loopback"))
  func anIPv6AddressIsConnectedToDirectly() async throws {
    let server = try await ScriptedServer(host: "::1", answer: { _ in (Self.ok("{}"), false) })
    defer { Task { await server.stop() } }
    let request = TokenRequest(
      url: "http://[::1]:\(server.port)/t", headers: [], body: Array("a=b".utf8), usesRefreshToken: false)
    let response = try await Self.transport.send(request, caFile: nil, timeout: 5)
    #expect(response.status == 200)
    #expect(server.requests.first?.contains("Host: [::1]:\(server.port)\r\n") == true)
  }

  @Test func anEmptyPostSaysContentLengthZeroAndAGetSaysNoLength() async throws {
    let server = try await ScriptedServer { _ in (Self.ok("{}"), false) }
    defer { Task { await server.stop() } }
    _ = try await Self.transport.send(Self.post(server, body: ""), caFile: nil, timeout: 5)
    var get = Self.post(server, path: "/revoke?token=t", body: "")
    get.method = "GET"
    _ = try await Self.transport.send(get, caFile: nil, timeout: 5)
    let sent = server.requests
    #expect(sent.count == 2)
    #expect(sent.first?.contains("Content-Length: 0\r\n") == true)
    #expect(sent.last?.hasPrefix("GET /revoke?token=t HTTP/1.1\r\n") == true)
    #expect(sent.last?.lowercased().contains("content-length") == false)
    #expect(sent.last?.lowercased().contains("transfer-encoding") == false)
  }

  @Test func aBodyEndedByClosingTheConnectionIsRead() async throws {
    let server = try await ScriptedServer { _ in
      (Array("HTTP/1.0 200 OK\r\n\r\n{\"access_token\":\"a\"}".utf8), true)
    }
    defer { Task { await server.stop() } }
    let response = try await Self.transport.send(Self.post(server), caFile: nil, timeout: 5)
    #expect(String(decoding: response.body, as: UTF8.self) == #"{"access_token":"a"}"#)
  }

  @Test func aChunkedBodyIsRead() async throws {
    let server = try await ScriptedServer { _ in
      (
        Array(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n4\r\n\"b\"}\r\n0\r\n\r\n".utf8
        ), false
      )
    }
    defer { Task { await server.stop() } }
    let response = try await Self.transport.send(Self.post(server), caFile: nil, timeout: 5)
    #expect(String(decoding: response.body, as: UTF8.self) == #"{"a":"b"}"#)
  }

  @Test func anAnswerCutShortIsAClosedConnection() async throws {
    let server = try await ScriptedServer { _ in
      (Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"acc".utf8), true)
    }
    defer { Task { await server.stop() } }
    let failure = await Self.failure(Self.post(server))
    #expect(failure?.message == "connection closed by the token endpoint")
    #expect(failure?.kind == .retryLater)
  }

  @Test func aConnectionClosedWithoutAnAnswerIsAClosedConnection() async throws {
    let server = try await ScriptedServer { _ in ([], true) }
    defer { Task { await server.stop() } }
    #expect(await Self.failure(Self.post(server))?.message == "connection closed by the token endpoint")
  }

  @Test func aBodyPastTheCapIsRefusedWhileItArrives() async throws {
    let big = String(repeating: "x", count: TokenExchange.maxBodyBytes + 1)
    let server = try await ScriptedServer { _ in (Self.ok(big), false) }
    defer { Task { await server.stop() } }
    #expect(await Self.failure(Self.post(server))?.message == "response body larger than 64 KiB")
  }

  @Test func notHTTPIsNamed() async throws {
    let server = try await ScriptedServer { _ in (Array("SSH-2.0-OpenSSH_9.2\r\n\r\n".utf8), true) }
    defer { Task { await server.stop() } }
    let message = await Self.failure(Self.post(server))?.message ?? ""
    #expect(message.hasPrefix("the answer of 127.0.0.1:\(server.port) is not HTTP/1.1"), "\(message)")
  }

  /// A server that speaks first, and not TLS, reached by name (Happy Eyeballs hands the
  /// connection over a step later than an address): the handshake fails while the connection is
  /// still being handed over to the request, and the failure is still reported as what it
  /// is (it had been "notFound": the closed connection's pipeline no longer held the
  /// handler the request was looked up in). Asked often, so both orders of the two come up.
  @Test func aTLSFailureBeforeTheRequestIsNamed() async throws {
    let server = try await ScriptedServer(greeting: Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
    defer { Task { await server.stop() } }
    for _ in 0..<200 {
      let request = TokenRequest(
        url: "https://localhost:\(server.port)/t", headers: [], body: [], usesRefreshToken: false)
      // A deadline far past any answer (a bound, not a measure): the test runs 200 of them
      // while every other suite starts.
      let message = await Self.failure(request, timeout: 60)?.message ?? ""
      #expect(message.hasPrefix("TLS failure with localhost:\(server.port): "), "\(message)")
    }
  }

  /// A name is looked up on the transport's own pool: with every thread of NIO's shared pool
  /// (where the state store's fsyncs run) held, a request to `localhost` is still answered.
  @Test func aNameLookupDoesNotWaitBehindTheSharedBlockingPool() async throws {
    let server = try await ScriptedServer { _ in (Self.ok("{}"), false) }
    defer { Task { await server.stop() } }
    let held = NIOSingletons.blockingPoolThreadCountSuggestion
    let release = DispatchSemaphore(value: 0)
    let holding = DispatchSemaphore(value: 0)
    for _ in 0..<held {
      NIOThreadPool.singleton.submit { _ in
        holding.signal()
        release.wait()
      }
    }
    defer { for _ in 0..<held { release.signal() } }
    try await offload { for _ in 0..<held { holding.wait() } }  // every thread is held now
    let request = TokenRequest(
      url: "http://localhost:\(server.port)/t", headers: [], body: Array("a=b".utf8), usesRefreshToken: false)
    let response = try await Self.transport.send(request, caFile: nil, timeout: 5)
    #expect(response.status == 200)
  }

  @Test func silenceEndsAtTheDeadline() async throws {
    let server = try await ScriptedServer { _ in nil }
    defer { Task { await server.stop() } }
    #expect(
      await Self.failure(Self.post(server), timeout: 0.5)?.message
        == "no complete answer within request_timeout (0.5 s)")
  }

  @Test func aRefusedConnectionNamesTheEndpoint() async throws {
    let server = try await ScriptedServer { _ in nil }
    let port = server.port
    await server.stop()
    let request = TokenRequest(
      url: "http://127.0.0.1:\(port)/t", headers: [], body: [], usesRefreshToken: false)
    let message = await Self.failure(request)?.message ?? ""
    #expect(message == "cannot reach the token endpoint 127.0.0.1:\(port): Connection refused", "\(message)")
  }

  @Test func anUnknownHostIsADNSError() async throws {
    let request = TokenRequest(
      url: "https://no-such-host.invalid/t", headers: [], body: [], usesRefreshToken: false)
    let message = await Self.failure(request)?.message ?? ""
    #expect(message.hasPrefix("cannot resolve no-such-host.invalid (DNS error: "), "\(message)")
    #expect(!message.contains("UnknownHost"), "\(message)")  // getaddrinfo's words, not a type's
  }

  @Test func aURLThatCannotBeUsedIsAConfigurationError() async throws {
    let request = TokenRequest(url: "ftp://example.com/t", headers: [], body: [], usesRefreshToken: false)
    let failure = await Self.failure(request)
    #expect(failure?.kind == .configurationWrong)
    #expect(failure?.message.hasPrefix("token_url cannot be used: scheme \"ftp\" is not supported") == true)
  }

  /// 64 connections at once to one endpoint: the 65th request waits for a slot, and never
  /// connects while the 64 are open.
  @Test func the65thRequestToOneEndpointWaitsForASlot() async throws {
    let server = try await ScriptedServer { _ in nil }
    defer { Task { await server.stop() } }
    let transport = HTTPTokenTransport(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    defer { Task { await transport.shutdown() } }
    let limit = HTTPTokenTransport.connectionsPerEndpoint
    let requests = (0...limit).map { _ in
      Task { try await transport.send(Self.post(server), caFile: nil, timeout: 60) }
    }
    let endpoint = "127.0.0.1|\(server.port)"
    try await offload {
      try poll("\(limit) requests received and one waiting") {
        server.requests.count == limit && transport.limiter.waiting(endpoint) == 1
      }
    }
    #expect(server.mostConnectionsAtOnce == limit)
    #expect(transport.limiter.open(endpoint) == limit)
    for request in requests { request.cancel() }
    for request in requests { _ = await request.result }
    // Each slot comes back once its connection is closed, on the event loop.
    try await offload {
      try poll("every slot given back") {
        transport.limiter.open(endpoint) == 0 && transport.limiter.waiting(endpoint) == 0
      }
    }
  }

  /// Many requests at once to one endpoint: every one is answered.
  @Test func manyRequestsAtOnceAreAllAnswered() async throws {
    let server = try await ScriptedServer { _ in (Self.ok("{}"), false) }
    defer { Task { await server.stop() } }
    let n = HTTPTokenTransport.connectionsPerEndpoint * 3
    try await withThrowingTaskGroup(of: Int.self) { group in
      for _ in 0..<n {
        group.addTask { try await Self.transport.send(Self.post(server), caFile: nil, timeout: 30).status }
      }
      for try await status in group { #expect(status == 200) }
    }
    #expect(server.requests.count == n)
  }
}

/// The slots behind the 64-connection cap.
@Suite struct ConnectionLimiterTests {
  @Test func aRequestPastTheLimitWaitsForASlotInTurn() {
    let limiter = ConnectionLimiter(limit: 2)
    let granted = NIOLockedValueBox<[String]>([])
    for name in ["a1", "a2", "a3", "a4"] {
      limiter.acquire("a") { granted.withLockedValue { $0.append(name) } }
    }
    // Another endpoint has slots of its own.
    limiter.acquire("b") { granted.withLockedValue { $0.append("b1") } }
    #expect(granted.withLockedValue { $0 } == ["a1", "a2", "b1"])
    #expect(limiter.open("a") == 2 && limiter.waiting("a") == 2)
    limiter.release("a")
    #expect(granted.withLockedValue { $0 } == ["a1", "a2", "b1", "a3"])
    limiter.release("a")
    limiter.release("a")
    limiter.release("a")
    #expect(granted.withLockedValue { $0 } == ["a1", "a2", "b1", "a3", "a4"])
    #expect(limiter.open("a") == 0 && limiter.waiting("a") == 0)
  }

  @Test func aWithdrawnWaiterIsNeverGranted() {
    let limiter = ConnectionLimiter(limit: 1)
    let granted = NIOLockedValueBox(0)
    let first = limiter.acquire("a") { granted.withLockedValue { $0 += 1 } }
    let second = limiter.acquire("a") { granted.withLockedValue { $0 += 100 } }
    #expect(!limiter.withdraw("a", ticket: first))  // it has its slot
    #expect(limiter.withdraw("a", ticket: second))
    limiter.release("a")
    #expect(granted.withLockedValue { $0 } == 1)
    #expect(limiter.open("a") == 0 && limiter.waiting("a") == 0)
  }
}

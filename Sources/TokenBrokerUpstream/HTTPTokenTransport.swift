import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// The upstream client: HTTP/1.1 over SwiftNIO, one connection per request (a token
/// endpoint is asked once per token lifetime; nothing is worth keeping open), certificate
/// and host name verification always on (an optional per-provider CA bundle), no redirects
/// followed, a 64 KiB body cap, and one hard deadline that covers connecting, the proxy's
/// tunnel when there is one (`[broker] https_proxy`), TLS, the queue for a connection slot
/// and the whole answer.
package final class HTTPTokenTransport: TokenTransport, Sendable {
  /// Connections open at once to one endpoint (the rest wait, within their deadline).
  package static let connectionsPerEndpoint = 64

  private let group: any EventLoopGroup
  /// Name lookups and CA bundle reads: a blocking pool of their own (not libdispatch's shared
  /// workers, not the event loops, and not NIO's shared pool, where the state store's fsyncs
  /// run: getaddrinfo may wait out a DNS server's timeouts, seconds, and neither should queue
  /// behind the other).
  private let pool: NIOThreadPool
  package static let lookupPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    return pool
  }()
  private let contexts = NIOLockedValueBox<[String: NIOSSLContext]>([:])
  let limiter = ConnectionLimiter(limit: HTTPTokenTransport.connectionsPerEndpoint)

  package init(eventLoopGroup: any EventLoopGroup) {
    self.group = eventLoopGroup
    pool = Self.lookupPool
  }

  package func send(
    _ request: TokenRequest, caFile: String?, proxy: UpstreamProxy?, timeout: Double
  ) async throws(UpstreamFailure) -> UpstreamResponse {
    let url: EndpointURL
    switch EndpointURL.parse(request.url) {
    case .success(let parsed): url = parsed
    case .failure(let problem):
      throw UpstreamFailure(.configurationWrong, message: "token_url cannot be used: \(problem.message)")
    }
    let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout * 1_000_000_000))
    do {
      let tls = url.scheme == "https" ? try await tlsContext(caFile: caFile) : nil
      return try await exchange(request, url: url, tls: tls, proxy: proxy, deadline: deadline)
    } catch let failure as UpstreamFailure {
      throw failure
    } catch {
      throw Self.classify(error, timeout: timeout, url: url, proxy: proxy)
    }
  }

  /// The TLS context of one trust configuration ("" is the system store), made once (on the
  /// blocking pool, off the event loops and the cooperative pool: it reads the CA bundle). A `ca_file` is keyed
  /// by its path and its inode, size and modification time, so a replaced bundle is read anew.
  private func tlsContext(caFile: String?) async throws -> NIOSSLContext {
    try await pool.runIfActive { [contexts] () throws -> NIOSSLContext in
      var key = ""
      if let caFile {
        var st = stat()
        guard access(caFile, R_OK) == 0, stat(caFile, &st) == 0 else {
          throw UpstreamFailure(.configurationWrong, message: "ca_file \(caFile) is not readable")
        }
        key = "\(caFile)|\(st.st_ino)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
      }
      if let made = contexts.withLockedValue({ $0[key] }) { return made }
      var configuration = TLSConfiguration.makeClientConfiguration()
      configuration.minimumTLSVersion = .tlsv12
      configuration.certificateVerification = .fullVerification
      configuration.applicationProtocols = ["http/1.1"]
      if let caFile { configuration.trustRoots = .file(caFile) }
      let made = try NIOSSLContext(configuration: configuration)
      contexts.withLockedValue { $0[key] = made }
      return made
    }
  }

  /// What one exchange holds while it runs, shared by the event loop's callbacks.
  private struct Exchange {
    var finished = false
    var ticket: Int?
    var channel: (any Channel)?
  }

  /// Waits for a connection slot, connects (an address as it is; a name resolved by
  /// getaddrinfo on the blocking pool, its addresses tried by Happy Eyeballs), sends
  /// the request on the connection that won, and collects the answer. The outcome is decided
  /// on the event loop (the answer, a failure or the deadline, whichever comes first), so a
  /// busy cooperative pool cannot turn an answer that came in time into a timeout.
  private func exchange(
    _ request: TokenRequest, url: EndpointURL, tls: NIOSSLContext?, proxy: UpstreamProxy?,
    deadline: NIODeadline
  ) async throws -> UpstreamResponse {
    let loop = group.next()
    let answer = loop.makePromise(of: UpstreamResponse.self)
    let endpoint = "\(url.connectHost)|\(url.effectivePort)"
    let state = NIOLockedValueBox(Exchange())
    let limiter = self.limiter
    let timer = loop.scheduleTask(deadline: deadline) { answer.fail(DeadlineExceeded()) }
    answer.futureResult.whenComplete { _ in
      timer.cancel()
      let (ticket, channel) = state.withLockedValue { s in
        s.finished = true
        return (s.ticket, s.channel)
      }
      if let ticket, channel == nil, limiter.withdraw(endpoint, ticket: ticket) { return }
      channel?.close(promise: nil)
    }
    let ticket = limiter.acquire(endpoint) {
      guard !state.withLockedValue({ $0.finished }) else {
        limiter.release(endpoint)
        return
      }
      self.connect(url: url, tls: tls, proxy: proxy, deadline: deadline, on: loop).whenComplete { result in
        switch result {
        case .failure(let error):
          limiter.release(endpoint)
          answer.fail(error)
        case .success(let connection):
          let channel = connection.channel
          // The slot is given back once the connection is closed, not before.
          channel.closeFuture.whenComplete { _ in limiter.release(endpoint) }
          let finished = state.withLockedValue { s in
            s.channel = channel
            return s.finished
          }
          guard !finished else {
            channel.close(promise: nil)
            return
          }
          // On the loop already (the connection's future is the loop's); the handler is at
          // hand even when the connection closed meanwhile, and says why it did.
          connection.handler.value.start(
            head: Self.requestHead(request, url: url), body: request.body, promise: answer)
        }
      }
    }
    state.withLockedValue { $0.ticket = ticket }
    return try await withTaskCancellationHandler {
      try await answer.futureResult.get()
    } onCancel: {
      answer.fail(CancellationError())
    }
  }

  /// A connection that won, and its exchange handler.
  struct Connection: Sendable {
    var channel: any Channel
    var handler: NIOLoopBound<UpstreamExchangeHandler>
  }

  /// One kind of handler of each connection attempt, by the attempt's channel, on the loop.
  static func attempts<Handler>(on loop: any EventLoop) -> NIOLoopBoundBox<[ObjectIdentifier: Handler]> {
    .makeBoxSendingValue([:], as: [ObjectIdentifier: Handler].self, eventLoop: loop)
  }

  /// A connection to the endpoint, or to the proxy with the tunnel to the endpoint open, with
  /// TLS (for https) and the exchange handler in place.
  private func connect(
    url: EndpointURL, tls: NIOSSLContext?, proxy: UpstreamProxy?, deadline: NIODeadline,
    on loop: any EventLoop
  ) -> EventLoopFuture<Connection> {
    let limit = TokenExchange.maxBodyBytes
    let serverName = url.isIPAddress ? nil : url.connectHost
    // Each attempt's handlers by its channel (Happy Eyeballs may open several): a closed
    // connection's pipeline no longer holds its handlers, and the winner's know why it closed.
    let exchanges: NIOLoopBoundBox<[ObjectIdentifier: UpstreamExchangeHandler]> = Self.attempts(on: loop)
    let tunnels: NIOLoopBoundBox<[ObjectIdentifier: ProxyTunnelHandler]> = Self.attempts(on: loop)
    @Sendable func addExchangeHandlers(_ channel: any Channel) throws {
      let sync = channel.pipeline.syncOperations
      if let tls {
        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
      }
      try sync.addHTTPClientHandlers()
      let handler = UpstreamExchangeHandler(limit: limit)
      try sync.addHandler(handler)
      exchanges.value[ObjectIdentifier(channel)] = handler
    }
    @Sendable func won(_ channel: any Channel) throws -> Connection {
      guard let handler = exchanges.value[ObjectIdentifier(channel)] else {
        throw ChannelPipelineError.notFound
      }
      exchanges.value.removeAll()
      return Connection(channel: channel, handler: NIOLoopBound(handler, eventLoop: loop))
    }
    let target = "\(url.host):\(url.effectivePort)"
    let bootstrap = ClientBootstrap(group: loop)
      .connectTimeout(max(.milliseconds(1), deadline - .now()))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if proxy != nil {
            let tunnel = ProxyTunnelHandler(target: target, authorization: proxy?.credential?.authorization)
            try channel.pipeline.syncOperations.addHandler(tunnel)
            tunnels.value[ObjectIdentifier(channel)] = tunnel
          } else {
            try addExchangeHandlers(channel)
          }
        }
      }
    let (host, port) = proxy.map { ($0.connectHost, $0.port) } ?? (url.connectHost, url.effectivePort)
    let connected: EventLoopFuture<any Channel>
    if let address = try? SocketAddress(ipAddress: host, port: port) {
      connected = bootstrap.connect(to: address)
    } else {
      connected = bootstrap.resolver(ThreadPoolResolver(loop: loop, pool: pool)).connect(
        host: host, port: port)
    }
    guard let proxy else { return connected.flatMapThrowing(won) }
    // The tunnel is asked for on the connection that won, and bounded by the same deadline.
    return connected.flatMap { channel in
      let open = loop.makePromise(of: Void.self)
      let timer = loop.scheduleTask(deadline: deadline) { open.fail(DeadlineExceeded()) }
      if let tunnel = tunnels.value[ObjectIdentifier(channel)] {
        tunnels.value.removeAll()
        tunnel.start(promise: open)
      } else {
        open.fail(ChannelPipelineError.notFound)
      }
      return open.futureResult.flatMapThrowing { () -> Connection in
        timer.cancel()
        try addExchangeHandlers(channel)
        return try won(channel)
      }.flatMapErrorThrowing { error in
        timer.cancel()
        channel.close(promise: nil)
        throw error
      }
    }.flatMapErrorThrowing { error in
      throw error is DeadlineExceeded ? error : ProxyFailure(error: error, proxy: proxy, target: target)
    }
  }

  /// Anything that went wrong on the way through the proxy, before the endpoint's TLS began.
  struct ProxyFailure: Error {
    var error: any Error
    var proxy: UpstreamProxy
    var target: String
  }

  static func requestHead(_ request: TokenRequest, url: EndpointURL) -> HTTPRequestHead {
    var headers = HTTPHeaders()
    headers.add(name: "Host", value: url.authority)
    for (name, value) in request.headers { headers.add(name: name, value: value) }
    if !request.body.isEmpty || request.method != "GET" {
      headers.replaceOrAdd(name: "Content-Length", value: String(request.body.count))
    }
    headers.replaceOrAdd(name: "Connection", value: "close")
    return HTTPRequestHead(
      version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: url.rest, headers: headers)
  }

  struct DeadlineExceeded: Error {}

  package func shutdown() async {
    contexts.withLockedValue { $0.removeAll() }
  }
}

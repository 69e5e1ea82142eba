import Logging
import NIOCore
import NIOHTTP1

/// One connection: collects each request (head, capped body), asks the
/// handler, writes the answer. Errors end this connection only.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let handler: any ServerRequestHandler
  private let limits: ServerLimits
  private let peer: PeerCredentials?
  private let logger: Logger
  private let connectionGuard: ConnectionGuard?
  private var head: HTTPRequestHead?
  private var body: [UInt8] = []
  private var bodyTooLarge = false

  init(
    handler: any ServerRequestHandler, limits: ServerLimits, peer: PeerCredentials?, logger: Logger,
    connectionGuard: ConnectionGuard?
  ) {
    self.connectionGuard = connectionGuard
    self.handler = handler
    self.limits = limits
    self.peer = peer
    self.logger = logger
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      body.removeAll(keepingCapacity: true)
      bodyTooLarge = false
      if let problem = oversizedHead(h) {
        head = nil
        bodyTooLarge = true
        let r = ServerResponse(
          status: .requestHeaderFieldsTooLarge,
          body: ErrorBody.json(code: "headers_too_large", message: problem))
        write(r, keepAlive: false, context: context)
        return
      }
      if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes
      {
        // Answer now: the client may be waiting for a 100-continue or still sending.
        head = nil
        rejectTooLarge(context: context)
      }
    case .body(var buffer):
      guard !bodyTooLarge, head != nil else { return }
      if body.count + buffer.readableBytes > limits.maxBodyBytes {
        bodyTooLarge = true
        body.removeAll()
      } else {
        body += buffer.readBytes(length: buffer.readableBytes) ?? []
      }
    case .end:
      guard let h = head else { return }
      head = nil
      connectionGuard?.requestFinished()
      if bodyTooLarge {
        rejectTooLarge(context: context)
        return
      }
      let request = ServerRequest(method: h.method, uri: h.uri, headers: h.headers, body: body, peer: peer)
      let keepAlive = h.isKeepAlive
      if let immediate = handler.respondImmediately(to: request) {
        write(immediate, keepAlive: keepAlive, context: context)
        return
      }
      let handler = self.handler
      context.eventLoop.makeFutureWithTask { await handler.handle(request) }
        .assumeIsolated()
        .whenSuccess { response in
          self.write(response, keepAlive: keepAlive, context: context)
        }
    }
  }

  /// Why a request head is over the caps, or nil.
  private func oversizedHead(_ h: HTTPRequestHead) -> String? {
    if h.uri.utf8.count > limits.maxRequestLineBytes {
      return "request target over \(limits.maxRequestLineBytes) bytes"
    }
    if h.headers.count > limits.maxHeaderCount { return "more than \(limits.maxHeaderCount) header fields" }
    var total = 0
    for (name, value) in h.headers { total += name.utf8.count + value.utf8.count + 4 }
    if total > limits.maxHeaderBytes { return "header fields over \(limits.maxHeaderBytes) bytes" }
    return nil
  }

  private func rejectTooLarge(context: ChannelHandlerContext) {
    bodyTooLarge = true
    let r = ServerResponse(
      status: .payloadTooLarge,
      body: ErrorBody.json(
        code: "payload_too_large", message: "request body over \(limits.maxBodyBytes) bytes"))
    write(r, keepAlive: false, context: context)
  }

  private func write(_ response: ServerResponse, keepAlive: Bool, context: ChannelHandlerContext) {
    guard context.channel.isActive else { return }
    var headers = HTTPHeaders(response.headers)
    headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
    if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
    let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
    context.write(wrapOutboundOut(.head(head)), promise: nil)
    if !response.body.isEmpty {
      var buffer = context.channel.allocator.buffer(capacity: response.body.count)
      buffer.writeBytes(response.body)
      context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }
    let done = context.writeAndFlushPromise(wrapOutboundOut(.end(nil)))
    if !keepAlive {
      done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // Malformed HTTP from a client: answer 400 once, then close. Never fatal.
    if let parserError = error as? HTTPParserError, context.channel.isActive {
      let r: ServerResponse
      if case .headerOverflow = parserError {
        r = ServerResponse(
          status: .requestHeaderFieldsTooLarge,
          body: ErrorBody.json(code: "headers_too_large", message: "request head too large"))
      } else {
        r = ServerResponse(
          status: .badRequest, body: ErrorBody.json(code: "bad_request", message: "malformed HTTP request"))
      }
      write(r, keepAlive: false, context: context)
      return
    }
    logger.debug("connection error", metadata: ["error": "\(error)"])
    context.close(promise: nil)
  }
}

extension ChannelHandlerContext {
  fileprivate func writeAndFlushPromise(_ data: NIOAny) -> EventLoopPromise<Void> {
    let p = eventLoop.makePromise(of: Void.self)
    writeAndFlush(data, promise: p)
    return p
  }
}

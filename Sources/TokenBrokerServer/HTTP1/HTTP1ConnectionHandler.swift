import Logging
import NIOCore
import NIOHTTP1

/// One connection, straight on its bytes: `HTTP1RequestParser` cuts requests out of what
/// arrives, the handler answers each, and every answer leaves as one buffer (head and
/// body together, one write). Requests are answered in order: while one waits for the
/// engines, the connection reads no more. A malformed request gets its 4xx and the
/// connection closes; nothing here is fatal to anything but this connection.
final class HTTP1ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let handler: any ServerRequestHandler
  private let peer: PeerCredentials?
  private let logger: Logger
  private let connectionGuard: ConnectionGuard?
  private var parser: HTTP1RequestParser
  /// Bytes received and not yet parsed.
  private var buffered: ByteBuffer?
  /// An answer is being prepared off the event loop; reading waits for it.
  private var busy = false
  /// A read was asked for while busy.
  private var readHeld = false
  /// The last answer closes the connection; what follows is ignored.
  private var closing = false

  init(
    handler: any ServerRequestHandler, limits: ServerLimits, peer: PeerCredentials?, logger: Logger,
    connectionGuard: ConnectionGuard?
  ) {
    self.handler = handler
    self.peer = peer
    self.logger = logger
    self.connectionGuard = connectionGuard
    self.parser = HTTP1RequestParser(limits: limits)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !closing else { return }
    var incoming = unwrapInboundIn(data)
    if buffered == nil || buffered!.readableBytes == 0 {
      buffered = incoming
    } else {
      buffered!.writeBuffer(&incoming)
    }
    process(context: context)
  }

  func read(context: ChannelHandlerContext) {
    if busy {
      readHeld = true
    } else {
      context.read()
    }
  }

  /// Answers every complete request buffered, in order, until one must wait.
  private func process(context: ChannelHandlerContext) {
    while !busy, !closing, let buffer = buffered, buffer.readableBytes > 0 {
      let outcome: Result<(HTTP1RequestParser.Request?, consumed: Int), HTTP1RequestParser.Failure> =
        buffer.withUnsafeReadableBytes { bytes in
          do throws(HTTP1RequestParser.Failure) {
            return .success(try parser.parse(bytes))
          } catch {
            return .failure(error)
          }
        }
      switch outcome {
      case .failure(let failure):
        buffered = nil
        connectionGuard?.requestFinished()
        let body = ErrorBody.json(code: failure.code, message: failure.message)
        let response = ServerResponse(status: HTTPResponseStatus(statusCode: failure.status), body: body)
        write(response, keepAlive: false, headOnly: false, context: context)
        return
      case .success((let request, let consumed)):
        buffered!.moveReaderIndex(forwardBy: consumed)
        guard let request else {
          compact()
          return
        }
        answer(request, context: context)
      }
    }
    compact()
    if !closing, !busy, !parser.isIdle || (buffered?.readableBytes ?? 0) > 0 {
      connectionGuard?.requestStarted()
    }
  }

  /// Drops parsed bytes; a buffer that holds a partial request keeps only that.
  private func compact() {
    guard let b = buffered else { return }
    if b.readableBytes == 0 {
      buffered = nil
    } else if b.readerIndex > 4096 {
      buffered!.discardReadBytes()
    }
  }

  private func answer(_ parsed: HTTP1RequestParser.Request, context: ChannelHandlerContext) {
    connectionGuard?.requestFinished()
    let method = HTTPMethod(rawValue: parsed.method)
    let request = ServerRequest(
      method: method, uri: parsed.target, headers: HTTPHeaders(parsed.headers), body: parsed.body, peer: peer)
    let keepAlive = parsed.keepAlive
    let headOnly = method == .HEAD
    if let immediate = handler.respondImmediately(to: request) {
      write(immediate, keepAlive: keepAlive, headOnly: headOnly, context: context)
      return
    }
    busy = true
    let handler = self.handler
    context.eventLoop.makeFutureWithTask { await handler.handle(request) }
      .assumeIsolated()
      .whenSuccess { response in
        self.busy = false
        self.write(response, keepAlive: keepAlive, headOnly: headOnly, context: context)
        guard !self.closing else { return }
        self.process(context: context)
        if self.readHeld, !self.busy {
          self.readHeld = false
          context.read()
        }
      }
  }

  private func write(
    _ response: ServerResponse, keepAlive: Bool, headOnly: Bool, context: ChannelHandlerContext
  ) {
    if !keepAlive { closing = true }
    guard context.channel.isActive else { return }
    var out = context.channel.allocator.buffer(capacity: 160 + response.body.count)
    response.encode(into: &out, keepAlive: keepAlive, includeBody: !headOnly)
    if keepAlive {
      context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    } else {
      context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in
        context.close(promise: nil)
      }
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error", metadata: ["error": "\(error)"])
    context.close(promise: nil)
  }
}

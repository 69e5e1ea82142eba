import Logging
import NIOCore
import NIOHTTP1

/// One connection, straight on its bytes: `HTTP1RequestParser` cuts requests out of what
/// arrives, the handler answers each, and every answer leaves as one buffer (head and
/// body together, one write). Requests are answered in order: while one waits for the
/// engines, the connection reads no more. A malformed request gets its 4xx and the
/// connection closes; nothing here is fatal to anything but this connection.
///
/// Backpressure: while the channel is not writable (the client does not read its
/// answers), no further request is answered and nothing more is read, so the answers
/// queued for one connection stay within the channel's write-buffer high-water mark
/// plus one answer. A client that half-closes its end gets an answer to every complete
/// request it sent before, then the connection closes.
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
  /// A read was asked for while busy or not writable.
  private var readHeld = false
  /// The last answer closes the connection; what follows is ignored.
  private var closing = false
  /// The client has half-closed: no more bytes will come.
  private var inputClosed = false
  /// The buffer of the last answer, kept to encode the next one into: once the channel has
  /// written it (usually at once), its storage is reused instead of allocated per answer.
  private var output: ByteBuffer?
  /// Answers larger than this do not keep their buffer (an idle connection holds little).
  private static let keptOutputCapacity = 4096

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
    if busy || !context.channel.isWritable {
      readHeld = true
    } else {
      context.read()
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    context.fireChannelWritabilityChanged()
    if context.channel.isWritable { resume(context: context) }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let event = event as? ChannelEvent, event == .inputClosed {
      inputClosed = true
      if !busy { process(context: context) }
    }
    context.fireUserInboundEventTriggered(event)
  }

  /// Goes on after an answer was computed or the channel became writable again: answers
  /// what is buffered, then reads again if a read was held.
  private func resume(context: ChannelHandlerContext) {
    guard !closing, context.channel.isActive else { return }
    process(context: context)
    if readHeld, !busy, !closing, context.channel.isWritable {
      readHeld = false
      context.read()
    }
  }

  /// Answers every complete request buffered, in order, until one must wait (for the
  /// engines, for the client to read, or for more bytes).
  private func process(context: ChannelHandlerContext) {
    var needsBytes = false
    requests: while !busy, !closing {
      // Backpressure: answers wait until the client reads the ones already queued.
      guard context.channel.isWritable else { break }
      guard let buffer = buffered, buffer.readableBytes > 0 else {
        needsBytes = true
        break
      }
      var request: HTTP1RequestParser.Request?
      var consumed = 0
      var failure: HTTP1RequestParser.Failure?
      buffer.withUnsafeReadableBytes { bytes in
        do throws(HTTP1RequestParser.Failure) {
          (request, consumed) = try parser.parse(bytes)
        } catch {
          failure = error
        }
      }
      if let failure {
        buffered = nil
        connectionGuard?.requestDispatched()
        let body = ErrorBody.json(code: failure.code, message: failure.message)
        let response = ServerResponse(status: HTTPResponseStatus(statusCode: failure.status), body: body)
        write(response, keepAlive: false, headOnly: false, context: context)
        return
      }
      buffered!.moveReaderIndex(forwardBy: consumed)
      guard let parsed = request.take() else {
        needsBytes = true
        break requests
      }
      answer(parsed, context: context)
    }
    compact()
    guard !closing, !busy else { return }
    if inputClosed {
      // Nothing more will come: once every complete request is answered, close (a
      // partial request left in the buffer can never be completed).
      if needsBytes { closeAfterLastWrite(context: context) }
      return
    }
    if !parser.isIdle || (buffered?.readableBytes ?? 0) > 0 {
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

  private func answer(_ parsed: consuming HTTP1RequestParser.Request, context: ChannelHandlerContext) {
    connectionGuard?.requestDispatched()
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
        self.resume(context: context)
      }
  }

  private func write(
    _ response: ServerResponse, keepAlive: Bool, headOnly: Bool, context: ChannelHandlerContext
  ) {
    if !keepAlive { closing = true }
    guard context.channel.isActive else { return }
    var out = output ?? context.channel.allocator.buffer(capacity: 160 + response.body.count)
    output = nil
    out.clear()
    response.encode(into: &out, keepAlive: keepAlive, includeBody: !headOnly)
    connectionGuard?.answerQueued()
    guard keepAlive else {
      let written = context.eventLoop.makePromise(of: Void.self)
      context.writeAndFlush(wrapOutboundOut(out), promise: written)
      let connectionGuard = self.connectionGuard
      written.futureResult.assumeIsolated().whenComplete { _ in
        connectionGuard?.answerWritten()
        context.close(promise: nil)
      }
      return
    }
    // No promise per answer: the writes of one connection complete in order, and the guard's
    // deadline is the same whether it counts from queueing or from writing (idle either way);
    // a close waits for them with an empty write of its own (`closeAfterLastWrite`).
    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    connectionGuard?.answerWritten()
    if out.capacity <= Self.keptOutputCapacity { output = out }
  }

  /// Closes once the answers handed to the channel are written (closing earlier would
  /// drop the ones still queued): an empty write completes after every write before it.
  private func closeAfterLastWrite(context: ChannelHandlerContext) {
    closing = true
    let flushed = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: flushed)
    flushed.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error", metadata: ["error": "\(error)"])
    context.close(promise: nil)
  }
}

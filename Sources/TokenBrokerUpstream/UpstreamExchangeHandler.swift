import NIOCore
import NIOHTTP1
import NIOSSL
import TokenBrokerCore

/// One request and its answer on a connection of its own. The request is written only
/// when `start` is called on the connection that won (a losing Happy Eyeballs attempt
/// never sends a refresh token); the answer is collected up to `limit` bytes of body,
/// then the connection closes. Every outcome completes the promise exactly once. A failure
/// before `start` (a certificate for another name ends the handshake while the connection is
/// still being handed over) is kept and given to `start`, so it is reported as itself.
final class UpstreamExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPClientResponsePart
  typealias OutboundOut = HTTPClientRequestPart

  /// The connection ended before the answer was complete.
  struct ConnectionClosed: Error {}
  /// The body grew past the cap.
  struct BodyTooLarge: Error {}

  private let limit: Int
  private var context: ChannelHandlerContext?
  private var outcome = PendingOutcome<UpstreamResponse>()
  private var head: HTTPResponseHead?
  private var body: ByteBuffer?

  init(limit: Int) {
    self.limit = limit
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
    outcome.take()?.fail(ConnectionClosed())
  }

  /// Sends the request; the promise gets the answer or the reason there is none.
  func start(head: HTTPRequestHead, body: [UInt8], promise: EventLoopPromise<UpstreamResponse>) {
    if let failure = outcome.start(
      promise, open: context?.channel.isActive == true, closed: ConnectionClosed())
    {
      promise.fail(failure)
      return
    }
    guard let context else { return }
    context.write(wrapOutboundOut(.head(head)), promise: nil)
    if !body.isEmpty {
      context.write(
        wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
    }
    let written = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    written.futureResult.assumeIsolated().whenFailure { self.outcome.take()?.fail($0) }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard outcome.isPending else { return }
    switch unwrapInboundIn(data) {
    case .head(let received):
      head = received
    case .body(var part):
      let held = body?.readableBytes ?? 0
      guard held + part.readableBytes <= limit else {
        outcome.take()?.fail(BodyTooLarge())
        context.close(promise: nil)
        return
      }
      if body == nil {
        body = part
      } else {
        body!.writeBuffer(&part)
      }
    case .end:
      guard let head else {
        outcome.take()?.fail(ConnectionClosed())
        context.close(promise: nil)
        return
      }
      var headers: [String: String] = [:]
      for (name, value) in head.headers { headers[name.lowercased()] = value }
      let bytes = body.map { Array(buffer: $0) } ?? []
      outcome.take()?.succeed(UpstreamResponse(status: Int(head.status.code), headers: headers, body: bytes))
      context.close(promise: nil)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    outcome.take()?.fail(ConnectionClosed())
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A peer that closes without TLS close_notify after a complete answer is common; an
    // incomplete answer is still reported (the decoder fails, or the connection ends).
    if let tls = error as? NIOSSLError, case .uncleanShutdown = tls { return }
    outcome.caught(error)?.fail(error)
    context.close(promise: nil)
  }
}

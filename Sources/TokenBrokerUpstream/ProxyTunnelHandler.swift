import NIOCore
import TokenBrokerCore

/// Opens a tunnel through an HTTP proxy (`CONNECT host:port`, RFC 9110 9.3.6) on a connection
/// of its own. `CONNECT` is written only when `start` is called on the connection that won (a
/// losing Happy Eyeballs attempt to the proxy says nothing); once the proxy answers 2xx the
/// handler leaves the pipeline and the connection carries the endpoint's TLS session. Every
/// outcome completes the promise exactly once; a failure before `start` is kept for it.
final class ProxyTunnelHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// The proxy's answer to `CONNECT` opened no tunnel (`.refused` or `.malformed`).
  struct Unusable: Error {
    var answer: ProxyAnswer
    /// The schemes its `Proxy-Authenticate` fields offer, lowercased (a 407's).
    var schemes: [String] = []
  }
  /// The connection ended before the tunnel was open: closed, or reset (`cause`).
  struct Closed: Error {
    var cause: IOError?
  }

  /// `host:port` of the endpoint (an IPv6 address in brackets).
  private let target: String
  /// `Proxy-Authorization`'s value, when the proxy has a credential.
  private let authorization: String?
  private var context: ChannelHandlerContext?
  private var outcome = PendingOutcome<Void>()
  private var received: ByteBuffer?

  init(target: String, authorization: String? = nil) {
    self.target = target
    self.authorization = authorization
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
    outcome.take()?.fail(Closed(cause: nil))
  }

  /// Asks the proxy for the tunnel; the promise succeeds once it is open (this handler gone).
  func start(promise: EventLoopPromise<Void>) {
    if let failure = outcome.start(
      promise, open: context?.channel.isActive == true, closed: Closed(cause: nil))
    {
      promise.fail(failure)
      return
    }
    guard let context else { return }
    var head = context.channel.allocator.buffer(
      capacity: 96 + 2 * target.utf8.count + (authorization?.utf8.count ?? 0))
    head.writeString("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n")
    if let authorization { head.writeString("Proxy-Authorization: \(authorization)\r\n") }
    head.writeString("\r\n")
    context.writeAndFlush(wrapOutboundOut(head), promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard outcome.isPending else { return }
    var part = unwrapInboundIn(data)
    if received == nil {
      received = part
    } else {
      received!.writeBuffer(&part)
    }
    let bytes = Array(received!.readableBytesView)
    switch ProxyAnswer.parse(bytes) {
    case .incomplete:
      return
    case let answer where answer != .open:
      outcome.take()?.fail(Unusable(answer: answer, schemes: ProxyAnswer.authenticationSchemes(bytes)))
      context.close(promise: nil)
    default:
      let opened = outcome.take()
      context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
      opened?.succeed(())
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    outcome.take()?.fail(Closed(cause: nil))
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A read or write that fails on the open connection (ECONNRESET, EPIPE) is the proxy
    // dropping it; failures to connect never come here.
    let error = (error as? IOError).map { Closed(cause: $0) } ?? error
    outcome.caught(error)?.fail(error)
    context.close(promise: nil)
  }
}

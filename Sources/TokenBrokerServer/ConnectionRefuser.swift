import NIOCore

/// Answers a connection over `maxConnections` (or over `maxConnectionsPerUID` for its
/// uid) with a 503 and closes it, so a flood of clients costs one small write each and
/// the others keep being served.
final class ConnectionRefuser: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  let message: String
  private var answered = false

  init(message: String) { self.message = message }

  func channelActive(context: ChannelHandlerContext) {
    guard !answered else { return }
    answered = true
    let bytes = ErrorBody.rawResponse(
      status: 503, reason: "Service Unavailable", code: "unavailable",
      message: message,
      extraHeaders: "Retry-After: 1\r\n")
    var buffer = context.channel.allocator.buffer(capacity: bytes.count + 16)
    buffer.writeBytes(bytes)
    context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
      context.close(promise: nil)
    }
  }

  func handlerAdded(context: ChannelHandlerContext) {
    if context.channel.isActive { channelActive(context: context) }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

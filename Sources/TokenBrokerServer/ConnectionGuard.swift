import NIOCore

/// Sits below the HTTP codec and watches raw bytes: a client that starts a
/// request must finish it within `requestDeadline` (else 408), and a connection
/// with no request in progress is closed after `idleTimeout`. The HTTP handler
/// reports finished requests through `requestFinished()`.
final class ConnectionGuard: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let limits: ServerLimits
  private var context: ChannelHandlerContext?
  private var timer: Scheduled<Void>?
  /// Bytes of a request have arrived and its end has not.
  private var requestInProgress = false
  private var closed = false

  init(limits: ServerLimits) { self.limits = limits }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    arm(idle: true)
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    timer?.cancel()
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if !requestInProgress {
      requestInProgress = true
      arm(idle: false)
    }
    context.fireChannelRead(data)
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    timer?.cancel()
    context.fireChannelInactive()
  }

  /// A request ended (its answer is on the way): the idle clock starts again.
  func requestFinished() {
    requestInProgress = false
    arm(idle: true)
  }

  private func arm(idle: Bool) {
    timer?.cancel()
    guard let context, !closed else { return }
    let seconds = idle ? limits.idleTimeout : limits.requestDeadline
    timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
      self.expired(idle: idle)
    }
  }

  private func expired(idle: Bool) {
    guard let context, !closed else { return }
    closed = true
    if idle {
      context.close(promise: nil)
      return
    }
    let bytes = ErrorBody.rawResponse(
      status: 408, reason: "Request Timeout", code: "request_timeout",
      message: "the request was not complete within \(Int(limits.requestDeadline)) s")
    var buffer = context.channel.allocator.buffer(capacity: bytes.count)
    buffer.writeBytes(bytes)
    context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
      context.close(promise: nil)
    }
  }
}

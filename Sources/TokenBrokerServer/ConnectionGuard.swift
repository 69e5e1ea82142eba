import NIOCore

/// Sits below the HTTP codec and watches raw bytes: a client that starts a
/// request must finish it within `requestDeadline` (else 408), and a connection
/// with no request in progress is closed after `idleTimeout`. The HTTP handler
/// reports finished requests through `requestFinished()`.
///
/// One timer per connection, re-armed lazily: a request only records when it started
/// or ended (a clock read); when the timer fires early for the current phase, it is set
/// again for that phase's real deadline. Keep-alive traffic arms no timer per request.
final class ConnectionGuard: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let limits: ServerLimits
  private let requestDeadline: TimeAmount
  private let idleTimeout: TimeAmount
  private var context: ChannelHandlerContext?
  private var timer: Scheduled<Void>?
  /// When the timer fires; nil when none is armed.
  private var timerDeadline: NIODeadline?
  /// Bytes of a request have arrived and its end has not.
  private var requestInProgress = false
  /// When the current phase (a request in progress, or idle) began.
  private var phaseStart = NIODeadline.uptimeNanoseconds(0)
  private var closed = false

  init(limits: ServerLimits) {
    self.limits = limits
    requestDeadline = .milliseconds(Int64(limits.requestDeadline * 1000))
    idleTimeout = .milliseconds(Int64(limits.idleTimeout * 1000))
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    phaseStart = context.eventLoop.now
    armIfNeeded()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    timer?.cancel()
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if !requestInProgress {
      requestInProgress = true
      phaseStart = context.eventLoop.now
      armIfNeeded()
    }
    context.fireChannelRead(data)
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    timer?.cancel()
    context.fireChannelInactive()
  }

  /// Bytes of the next request are already buffered: its deadline runs from now.
  func requestStarted() {
    guard !requestInProgress else { return }
    requestInProgress = true
    phaseStart = context?.eventLoop.now ?? phaseStart
    armIfNeeded()
  }

  /// A request ended (its answer is on the way): the idle clock starts again.
  func requestFinished() {
    requestInProgress = false
    phaseStart = context?.eventLoop.now ?? phaseStart
    armIfNeeded()
  }

  private var phaseDeadline: NIODeadline {
    phaseStart + (requestInProgress ? requestDeadline : idleTimeout)
  }

  /// Arms the timer when none is armed or the armed one would fire after the phase's
  /// deadline (the request deadline is shorter than the idle timeout).
  private func armIfNeeded() {
    let due = phaseDeadline
    if let armed = timerDeadline, armed <= due { return }
    arm(at: due)
  }

  private func arm(at due: NIODeadline) {
    timer?.cancel()
    guard let context, !closed else { return }
    timerDeadline = due
    timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
      self.timerFired()
    }
  }

  private func timerFired() {
    timer = nil
    timerDeadline = nil
    guard let context, !closed else { return }
    let due = phaseDeadline
    if due > context.eventLoop.now {
      arm(at: due)
    } else {
      expired(idle: !requestInProgress)
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

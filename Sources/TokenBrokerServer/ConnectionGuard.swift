import NIOCore

/// Sits below the HTTP handler and watches raw bytes: a client that starts a request must
/// finish it within `requestDeadline` (else 408), a connection with nothing in progress
/// is closed after `idleTimeout`, and so is one whose answers the client has not taken
/// for `idleTimeout` (it does not read). While an answer is being computed, no timer
/// runs: the server's own work never times a connection out, and no 408 is written
/// while an earlier request's answer is pending. The HTTP handler reports each request
/// it dispatches, and each answer it queues and that is then written.
///
/// One timer per connection, re-armed lazily: a request only records when it started
/// or ended (a clock read); when the timer fires early for the current phase, it is set
/// again for that phase's real deadline. Keep-alive traffic arms no timer per request.
///
/// Inbound only: the answers the HTTP handler writes go straight to the socket, not
/// through this handler (two pipeline hops less per answer).
final class ConnectionGuard: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
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
  /// Requests dispatched whose answer is not written yet (being computed or queued).
  private var pendingAnswers = 0
  /// Answers handed to the channel and not yet written to the socket.
  private var queuedAnswers = 0
  /// When the current phase began.
  private var phaseStart = NIODeadline.uptimeNanoseconds(0)
  private var closed = false
  /// The time of the read being handled, while it is.
  private var readTime: NIODeadline?

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
    // One clock reading for every phase this read goes through (a cached answer is parsed,
    // dispatched, queued and written before fireChannelRead returns).
    readTime = context.eventLoop.now
    requestStarted()
    context.fireChannelRead(data)
    readTime = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    timer?.cancel()
    context.fireChannelInactive()
  }

  /// Bytes of the next request are already buffered: its deadline runs from now (or,
  /// when earlier answers are pending, from when the last of them is written).
  func requestStarted() {
    guard !requestInProgress else { return }
    requestInProgress = true
    newPhase()
  }

  /// A whole request was read and handed on: its answer is pending until written.
  func requestDispatched() {
    requestInProgress = false
    pendingAnswers += 1
    newPhase()
  }

  /// The answer to a dispatched request was handed to the channel.
  func answerQueued() {
    queuedAnswers += 1
    newPhase()
  }

  /// An answer was written to the socket (or its write failed): the request is finished.
  func answerWritten() {
    queuedAnswers = max(0, queuedAnswers - 1)
    pendingAnswers = max(0, pendingAnswers - 1)
    newPhase()
  }

  private func newPhase() {
    phaseStart = readTime ?? context?.eventLoop.now ?? phaseStart
    armIfNeeded()
  }

  /// When the current phase times out: never while an answer is being computed; after
  /// `idleTimeout` of the client not taking queued answers; after `requestDeadline` for a
  /// request in progress, `idleTimeout` for nothing in progress.
  private var phaseDeadline: NIODeadline? {
    if pendingAnswers > queuedAnswers { return nil }
    if queuedAnswers > 0 { return phaseStart + idleTimeout }
    return phaseStart + (requestInProgress ? requestDeadline : idleTimeout)
  }

  /// Arms the timer when none is armed or the armed one would fire after the phase's
  /// deadline (the request deadline is shorter than the idle timeout).
  private func armIfNeeded() {
    guard let due = phaseDeadline else { return }
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
    // An answer being computed: no timer until it is queued (which re-arms).
    guard let due = phaseDeadline else { return }
    if due > context.eventLoop.now {
      arm(at: due)
    } else {
      expired(requestTimeout: pendingAnswers == 0 && requestInProgress)
    }
  }

  private func expired(requestTimeout: Bool) {
    guard let context, !closed else { return }
    closed = true
    guard requestTimeout else {
      // Idle, or answers the client does not take: close without a word.
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

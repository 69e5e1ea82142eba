import NIOCore
import NIOHTTP1

/// The fake upstream's connection handler: full control over what goes on the wire.
final class FakeUpstreamHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let upstream: FakeUpstream
  var head: HTTPRequestHead?
  var body: [UInt8] = []

  init(upstream: FakeUpstream) { self.upstream = upstream }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      body = []
    case .body(var b):
      body += b.readBytes(length: b.readableBytes) ?? []
    case .end:
      guard let h = head else { return }
      var headers: [String: String] = [:]
      for (k, v) in h.headers { headers[k.lowercased()] = v }
      let recorded = FakeUpstream.Recorded(
        method: h.method.rawValue, path: h.uri, headers: headers, body: String(decoding: body, as: UTF8.self))
      upstream.record(recorded)
      perform(upstream.answer(recorded), context: context)
    }
  }

  private func perform(_ answer: FakeAnswer, context: ChannelHandlerContext) {
    switch answer {
    case .respond(let status, let headers, let body):
      writeHead(context, status: status, headers: headers, length: body.count)
      var buf = context.channel.allocator.buffer(capacity: body.count)
      buf.writeBytes(body)
      context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    case .stall:
      break
    case .slowBody(let interval, let body):
      writeHead(context, status: 200, headers: ["Content-Type": "application/json"], length: body.count)
      context.flush()
      trickle(context, body[...], interval: interval)
    case .delayed(let seconds, let inner):
      context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
        self.perform(inner, context: context)
      }
    }
  }

  private func writeHead(
    _ context: ChannelHandlerContext, status: Int, headers: [String: String], length: Int
  ) {
    var h = HTTPHeaders(headers.map { ($0.key, $0.value) })
    h.replaceOrAdd(name: "Content-Length", value: String(length))
    context.write(
      wrapOutboundOut(
        .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))),
      promise: nil)
  }

  private func trickle(_ context: ChannelHandlerContext, _ rest: ArraySlice<UInt8>, interval: Double) {
    guard let byte = rest.first, context.channel.isActive else {
      if context.channel.isActive { context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
      return
    }
    var buf = context.channel.allocator.buffer(capacity: 1)
    buf.writeInteger(byte)
    context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
    let next = rest.dropFirst()
    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(interval * 1000))) {
      self.trickle(context, next, interval: interval)
    }
  }
}

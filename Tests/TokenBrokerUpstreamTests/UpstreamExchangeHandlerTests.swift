import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TokenBrokerCore

@testable import TokenBrokerUpstream

/// The exchange handler on a channel of its own: what it does with a failure that comes
/// before the request is handed to it.
@Suite struct UpstreamExchangeHandlerTests {
  struct HandshakeFailed: Error {}

  static let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/t")

  /// A handshake that fails while the connection is being handed over closes it; the
  /// request that comes next is told that failure, not that the connection closed.
  @Test func aFailureBeforeTheRequestIsWhatTheRequestIsTold() throws {
    let channel = EmbeddedChannel()
    let handler = UpstreamExchangeHandler(limit: 1024)
    try channel.pipeline.syncOperations.addHandler(handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    channel.pipeline.fireErrorCaught(HandshakeFailed())
    #expect(!channel.isActive)
    let answer = channel.eventLoop.makePromise(of: UpstreamResponse.self)
    handler.start(head: Self.head, body: [], promise: answer)
    #expect(throws: HandshakeFailed.self) { try answer.futureResult.wait() }
    #expect(try channel.readOutbound(as: HTTPClientRequestPart.self) == nil)  // nothing was sent
  }

  /// A connection that closed quietly before the request is a closed connection.
  @Test func aConnectionClosedBeforeTheRequestIsAClosedConnection() throws {
    let channel = EmbeddedChannel()
    let handler = UpstreamExchangeHandler(limit: 1024)
    try channel.pipeline.syncOperations.addHandler(handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    try channel.close().wait()
    let answer = channel.eventLoop.makePromise(of: UpstreamResponse.self)
    handler.start(head: Self.head, body: [], promise: answer)
    #expect(throws: UpstreamExchangeHandler.ConnectionClosed.self) { try answer.futureResult.wait() }
  }

  /// After the request is out, a failure completes the answer once, as itself.
  @Test func aFailureAfterTheRequestFailsTheAnswer() throws {
    let channel = EmbeddedChannel()
    let handler = UpstreamExchangeHandler(limit: 1024)
    try channel.pipeline.syncOperations.addHandler(handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    let answer = channel.eventLoop.makePromise(of: UpstreamResponse.self)
    handler.start(head: Self.head, body: Array("a=b".utf8), promise: answer)
    guard case .head(let sent) = try channel.readOutbound(as: HTTPClientRequestPart.self) else {
      Issue.record("the request head was not written")
      return
    }
    #expect(sent.uri == "/t")
    channel.pipeline.fireErrorCaught(HandshakeFailed())
    #expect(throws: HandshakeFailed.self) { try answer.futureResult.wait() }
  }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TokenBrokerCore

/// An HTTP proxy in the test process that speaks `CONNECT` (as squid or tinyproxy do for
/// https): it opens a tunnel to the `host:port` a client asks for and relays bytes both
/// ways. Every host name resolves to 127.0.0.1 here (a proxy resolves names itself, so a
/// client behind it never looks `auth.example.com` up). It records each `CONNECT` target and
/// every byte it relayed from clients, asks for a Basic credential on demand
/// (`requireCredential`) and misbehaves on demand (`behave`).
package final class ConnectProxy: Sendable {
  package enum Behaviour: Sendable, Equatable {
    /// Opens the tunnel (200) and relays.
    case tunnel
    /// Answers `CONNECT` with this status and reason, then closes.
    case refuse(status: Int, reason: String)
    /// Answers with bytes that are not HTTP, then closes.
    case garbage
    /// Reads `CONNECT` and never answers.
    case silent
    /// Answers 407 with one `Proxy-Authenticate` field per scheme (`Negotiate`, `NTLM`), then
    /// closes.
    case askFor(schemes: [String])
  }

  struct State {
    var behaviour = Behaviour.tunnel
    var targets: [String] = []
    var relayed: [UInt8] = []
    /// `Proxy-Authorization` a `CONNECT` must carry, else 407.
    var required: String?
    /// Each `CONNECT`'s `Proxy-Authorization` (nil: none), in order.
    var authorizations: [String?] = []
  }

  private let channel: any Channel
  private let state: NIOLockedValueBox<State>

  package var port: Int { channel.localAddress?.port ?? 0 }
  /// The proxy's URL, as `[broker] https_proxy` takes it.
  package var url: String { "http://127.0.0.1:\(port)" }
  package var proxy: UpstreamProxy { UpstreamProxy(host: "127.0.0.1", port: port) }
  /// Every `CONNECT` target asked for, in order.
  package var targets: [String] { state.withLockedValue { $0.targets } }
  /// Every byte relayed from clients to endpoints (what the proxy could read of the exchange).
  package var relayedFromClients: [UInt8] { state.withLockedValue { $0.relayed } }

  package func behave(_ behaviour: Behaviour) {
    state.withLockedValue { $0.behaviour = behaviour }
  }

  /// From now on a `CONNECT` without `Proxy-Authorization: Basic` of this user and password
  /// is answered 407, as squid with `proxy_auth` does.
  package func requireCredential(user: String, password: String) {
    let value = ProxyCredential(user: user, password: password).authorization
    state.withLockedValue { $0.required = value }
  }

  /// Each `CONNECT`'s `Proxy-Authorization` value (nil: it had none), in order.
  package var authorizations: [String?] { state.withLockedValue { $0.authorizations } }

  private init(channel: any Channel, state: NIOLockedValueBox<State>) {
    self.channel = channel
    self.state = state
  }

  package static func start() async throws -> ConnectProxy {
    let state = NIOLockedValueBox(State())
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(Front(state: state))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    return ConnectProxy(channel: channel, state: state)
  }

  package func stop() async {
    try? await channel.close()
  }

  /// The client's side: reads the `CONNECT` head, then relays to the endpoint.
  private final class Front: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: NIOLockedValueBox<State>
    var head: [UInt8] = []
    var done = false

    init(state: NIOLockedValueBox<State>) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      guard !done else { return }
      head += unwrapInboundIn(data).readableBytesView
      guard let end = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: head) else { return }
      done = true
      let line = String(decoding: head[..<(Self.find([0x0D, 0x0A], in: head) ?? end)], as: UTF8.self)
      let words = line.split(separator: " ")
      guard words.count == 3, words[0] == "CONNECT", let colon = words[1].lastIndex(of: ":"),
        let port = Int(words[1][words[1].index(after: colon)...])
      else {
        answer("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", close: true, context)
        return
      }
      let authorization = String(decoding: head[..<end], as: UTF8.self).split(separator: "\r\n").dropFirst()
        .first { $0.lowercased().hasPrefix("proxy-authorization:") }
        .map { String($0.dropFirst("proxy-authorization:".count).drop { $0 == " " }) }
      let (behaviour, required) = state.withLockedValue { s -> (Behaviour, String?) in
        s.targets.append(String(words[1]))
        s.authorizations.append(authorization)
        return (s.behaviour, s.required)
      }
      if let required, authorization != required {
        askFor(["Basic realm=\"test\""], context)
        return
      }
      switch behaviour {
      case .refuse(let status, let reason):
        answer("HTTP/1.1 \(status) \(reason)\r\nContent-Length: 0\r\n\r\n", close: true, context)
      case .garbage:
        answer("SSH-2.0-OpenSSH_9.2\r\n\r\n", close: true, context)
      case .silent:
        return
      case .askFor(let schemes):
        askFor(schemes, context)
      case .tunnel:
        open(port: port, context)
      }
    }

    private func open(port: Int, _ context: ChannelHandlerContext) {
      let front = context.channel
      let state = self.state
      let loop = context.eventLoop
      ClientBootstrap(group: loop)
        .channelInitializer { back in
          back.eventLoop.makeCompletedFuture {
            try back.pipeline.syncOperations.addHandler(Relay(peer: front, record: nil))
          }
        }
        .connect(host: "127.0.0.1", port: port)
        .assumeIsolated()
        .whenComplete { result in
          switch result {
          case .failure:
            self.answer("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", close: true, context)
          case .success(let back):
            let sync = context.pipeline.syncOperations
            try? sync.addHandler(Relay(peer: back, record: state), position: .after(self))
            sync.removeHandler(context: context, promise: nil)
            self.answer("HTTP/1.1 200 Connection established\r\n\r\n", close: false, context)
          }
        }
    }

    /// 407 with one `Proxy-Authenticate` field per challenge, then closes.
    private func askFor(_ challenges: [String], _ context: ChannelHandlerContext) {
      answer(
        "HTTP/1.1 407 Proxy Authentication Required\r\n"
          + challenges.map { "Proxy-Authenticate: \($0)\r\n" }.joined() + "Content-Length: 0\r\n\r\n",
        close: true, context)
    }

    private func answer(_ text: String, close: Bool, _ context: ChannelHandlerContext) {
      let written = context.channel.writeAndFlush(context.channel.allocator.buffer(string: text))
      if close { written.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
      guard bytes.count >= needle.count else { return nil }
      for i in 0...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) {
        return i
      }
      return nil
    }
  }

  /// Copies what one side sends to the other; closes the other when one side closes.
  private final class Relay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let peer: any Channel
    let record: NIOLockedValueBox<State>?

    init(peer: any Channel, record: NIOLockedValueBox<State>?) {
      self.peer = peer
      self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let bytes = unwrapInboundIn(data)
      record?.withLockedValue { $0.relayed += bytes.readableBytesView }
      peer.writeAndFlush(bytes, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      peer.close(promise: nil)
      context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      context.close(promise: nil)
    }
  }
}

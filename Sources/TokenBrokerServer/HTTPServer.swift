import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

/// HTTP/1.1 server for the broker's socket (and, over TCP, the demo issuer and
/// the test upstream). Peer credentials are read once per connection at accept.
package final class HTTPServer: Sendable {
  package enum Binding: Sendable, Equatable {
    /// Bind a path: a stale socket is removed, mode and group applied.
    case unix(path: String, mode: UInt32 = 0o660, group: UInt32? = nil)
    /// A listening descriptor inherited from systemd.
    case inherited(fd: Int32)
    case tcp(host: String, port: Int)
  }

  package struct BindError: Error, CustomStringConvertible {
    package var description: String
    package init(description: String) { self.description = description }
  }

  private let channel: any Channel
  package let binding: Binding

  /// TCP port actually bound (for `.tcp(port: 0)`).
  package var port: Int? { channel.localAddress?.port }

  private init(channel: any Channel, binding: Binding) {
    self.channel = channel
    self.binding = binding
  }

  package static func start(
    _ binding: Binding, group: any EventLoopGroup, handler: any ServerRequestHandler,
    limits: ServerLimits = ServerLimits(), logger: Logger
  ) async throws -> HTTPServer {
    let connections = NIOLockedValueBox(ConnectionCounts())
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 256)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      // A client that half-closes after sending still gets its answers (the HTTP handler
      // closes once they are written).
      .childChannelOption(.allowRemoteHalfClosure, value: true)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          // Peer credentials once, at accept: the kernel's word, not the client's.
          let peer =
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(
              of: NIOBSDSocket.Handle.self
            ) { fd in PeerCredentials.read(fd: fd) } ?? nil
          let counted = peer.flatMap { limits.exemptUIDs.contains($0.uid) ? nil : $0.uid }
          let refusal = connections.withLockedValue { $0.admit(uid: counted, limits: limits) }
          if let refusal {
            try channel.pipeline.syncOperations.addHandler(ConnectionRefuser(message: refusal))
            return
          }
          channel.closeFuture.whenComplete { _ in connections.withLockedValue { $0.release(uid: counted) } }
          try installConnectionPipeline(
            on: channel, handler: handler, limits: limits, peer: peer, logger: logger)
        }
      }
    let channel: any Channel
    switch binding {
    case .unix(let path, let mode, let gid):
      guard path.utf8.count <= 107 else {
        throw BindError(
          description: "socket path \(path) is \(path.utf8.count) bytes; a Unix socket path holds at most 107"
        )
      }
      try refuseIfLive(path)
      channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
      if chmod(path, mode_t(mode)) != 0 {
        throw BindError(description: "cannot set mode of \(path): \(String(cString: strerror(errno)))")
      }
      if let gid, chown(path, uid_t.max, gid) != 0 {
        throw BindError(
          description: "cannot give \(path) to group \(gid): \(String(cString: strerror(errno)))")
      }
    case .inherited(let fd):
      channel = try await bootstrap.withBoundSocket(fd).get()
    case .tcp(let host, let port):
      channel = try await bootstrap.bind(host: host, port: port).get()
    }
    return HTTPServer(channel: channel, binding: binding)
  }

  /// A socket file someone still listens on is another daemon's: never steal it.
  private static func refuseIfLive(_ path: String) throws {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    guard (st.st_mode & S_IFMT) == S_IFSOCK else {
      throw BindError(
        description: "\(path) exists and is not a socket; remove it or choose another [broker] socket")
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return }
    defer { _ = Glibc.close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
      for (i, b) in path.utf8.enumerated() { raw[i] = b }
    }
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if rc == 0 {
      throw BindError(
        description: "another process is already listening on \(path); is token-brokerd running?")
    }
  }

  /// Stops accepting; open connections finish on their own. A socket inherited from systemd
  /// is not closed, only no longer read: the socket is shared with the socket unit, and the
  /// connections waiting in its queue are the next process's (a restart loses none).
  package func close() async {
    if case .inherited = binding {
      try? await channel.setOption(ChannelOptions.autoRead, value: false).get()
      return
    }
    try? await channel.close()
    if case .unix(let path, _, _) = binding { unlink(path) }
  }
}

/// Connections open, in all and per counted uid (uids in `ServerLimits.exemptUIDs` and
/// TCP peers are counted in all only).
struct ConnectionCounts: Sendable {
  var total = 0
  var perUID: [UInt32: Int] = [:]

  /// Takes a slot, or returns why not (the text of the 503).
  mutating func admit(uid: UInt32?, limits: ServerLimits) -> String? {
    guard total < limits.maxConnections else {
      return "too many connections (\(limits.maxConnections)); retry shortly"
    }
    if let uid {
      let held = perUID[uid, default: 0]
      guard held < limits.maxConnectionsPerUID else {
        return "too many connections from uid \(uid) (\(limits.maxConnectionsPerUID)); close some and retry"
      }
      perUID[uid] = held + 1
    }
    total += 1
    return nil
  }

  mutating func release(uid: UInt32?) {
    total -= 1
    if let uid, let held = perUID[uid] {
      perUID[uid] = held > 1 ? held - 1 : nil
    }
  }
}

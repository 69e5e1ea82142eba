import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

/// A token endpoint's name resolved by getaddrinfo(3) on the transport's lookup pool: a lookup
/// per connection, off the event loops and off libdispatch's shared workers (SwiftNIO's own
/// resolver queues every lookup of an event loop behind one another on libdispatch). One lookup answers both the A and the AAAA query of Happy Eyeballs, which
/// always asks both: a resolver is made for one connection to a name, and used.
final class ThreadPoolResolver: Resolver, Sendable {
  /// A name getaddrinfo(3) could not resolve, with its words (`Name or service not known`).
  struct Unresolved: Error, CustomStringConvertible {
    var host: String
    var reason: String
    var description: String { reason }
  }

  private let loop: any EventLoop
  private let pool: NIOThreadPool
  private let v4: EventLoopPromise<[SocketAddress]>
  private let v6: EventLoopPromise<[SocketAddress]>
  private let started = NIOLockedValueBox(false)

  init(loop: any EventLoop, pool: NIOThreadPool) {
    self.loop = loop
    self.pool = pool
    v4 = loop.makePromise()
    v6 = loop.makePromise()
  }

  func initiateAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
    resolve(host: host, port: port)
    return v4.futureResult
  }

  func initiateAAAAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
    resolve(host: host, port: port)
    return v6.futureResult
  }

  func cancelQueries() {}

  private func resolve(host: String, port: Int) {
    guard
      !started.withLockedValue({ s in
        defer { s = true }; return s
      })
    else { return }
    let (v4, v6) = (self.v4, self.v6)
    pool.runIfActive(eventLoop: loop) { () throws -> ([SocketAddress], [SocketAddress]) in
      try Self.lookup(host: host, port: port)
    }.whenComplete { result in
      switch result {
      case .success(let (four, six)):
        v4.succeed(four)
        v6.succeed(six)
      case .failure(let error):
        v4.fail(error)
        v6.fail(error)
      }
    }
  }

  /// getaddrinfo(3) for stream sockets: the IPv4 and the IPv6 addresses, in its order.
  static func lookup(host: String, port: Int) throws -> ([SocketAddress], [SocketAddress]) {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_protocol = Int32(IPPROTO_TCP)
    var info: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &info)
    guard rc == 0 else { throw Unresolved(host: host, reason: String(cString: gai_strerror(rc))) }
    defer { freeaddrinfo(info) }
    var four: [SocketAddress] = []
    var six: [SocketAddress] = []
    var next = info
    while let entry = next {
      switch entry.pointee.ai_family {
      case AF_INET:
        entry.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
          four.append(SocketAddress($0.pointee, host: host))
        }
      case AF_INET6:
        entry.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
          six.append(SocketAddress($0.pointee, host: host))
        }
      default: break
      }
      next = entry.pointee.ai_next
    }
    return (four, six)
  }
}

import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// The upstream token client over AsyncHTTPClient: certificate verification
/// always on (an optional per-provider CA bundle), no redirects followed, a
/// 64 KiB body cap, and one hard deadline that covers the body too.
package final class HTTPTokenTransport: TokenTransport, @unchecked Sendable {
  private let lock = NIOLockedValueBox<[String: HTTPClient]>([:])
  private let eventLoopGroup: any EventLoopGroup

  package init(eventLoopGroup: any EventLoopGroup) {
    self.eventLoopGroup = eventLoopGroup
  }

  /// One client per trust configuration ("" is the system store). A `ca_file` is keyed by
  /// its path and its inode, size and modification time, so a replaced bundle is read anew.
  private func client(caFile: String?) throws(UpstreamFailure) -> HTTPClient {
    var key = ""
    if let caFile {
      var st = stat()
      guard access(caFile, R_OK) == 0, stat(caFile, &st) == 0 else {
        throw UpstreamFailure(.configurationWrong, message: "ca_file \(caFile) is not readable")
      }
      key = "\(caFile)|\(st.st_ino)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }
    return lock.withLockedValue { clients -> HTTPClient in
      if let existing = clients[key] { return existing }
      var tls = TLSConfiguration.makeClientConfiguration()
      tls.minimumTLSVersion = .tlsv12
      tls.certificateVerification = .fullVerification
      if let caFile { tls.trustRoots = .file(caFile) }
      var config = HTTPClient.Configuration(
        tlsConfiguration: tls, redirectConfiguration: .disallow, decompression: .disabled)
      config.connectionPool = .init(idleTimeout: .seconds(60))
      // Many providers on one identity provider refresh at once after a start: AHC's default
      // of 8 connections per host would queue them into their deadlines.
      config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
      // A refused connection, a name that does not resolve or a certificate that does not
      // verify fails the request at once with its own error: the engine's backoff (with
      // jitter) retries, instead of the client retrying until request_timeout and the
      // operator reading "no complete answer" for what was a refused connection.
      config.connectionPool.retryConnectionEstablishment = false
      config.httpVersion = .automatic
      let made = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: config)
      clients[key] = made
      return made
    }
  }

  package func send(_ request: TokenRequest, caFile: String?, timeout: Double) async throws(UpstreamFailure)
    -> UpstreamResponse
  {
    let client = try client(caFile: caFile)
    let deadlineNanos = Int64(timeout * 1_000_000_000)
    do {
      return try await withThrowingTaskGroup(of: UpstreamResponse?.self) { group in
        group.addTask {
          var http = HTTPClientRequest(url: request.url)
          http.method = HTTPMethod(rawValue: request.method)
          for (name, value) in request.headers { http.headers.add(name: name, value: value) }
          if request.body.isEmpty {
            http.headers.replaceOrAdd(name: "Content-Length", value: "0")
          } else {
            http.body = .bytes(ByteBuffer(bytes: request.body))
          }
          let response = try await client.execute(http, deadline: .now() + .nanoseconds(deadlineNanos))
          let body = try await response.body.collect(upTo: TokenExchange.maxBodyBytes)
          var headers: [String: String] = [:]
          for (name, value) in response.headers { headers[name.lowercased()] = value }
          return UpstreamResponse(
            status: Int(response.status.code), headers: headers, body: Array(buffer: body))
        }
        group.addTask {
          // A little after the client's own deadline, whose error says more (e.g. connection refused).
          try await Task.sleep(nanoseconds: UInt64(deadlineNanos) + 200_000_000)
          return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let response = first else {
          throw DeadlineExceeded()
        }
        return response
      }
    } catch {
      throw Self.classify(error, timeout: timeout, url: request.url)
    }
  }

  struct DeadlineExceeded: Error {}

  static func classify(_ error: any Error, timeout: Double, url: String) -> UpstreamFailure {
    let seconds = timeout.rounded() == timeout ? "\(Int(timeout))" : "\(timeout)"
    switch error {
    case is DeadlineExceeded:
      return UpstreamFailure(.retryLater, message: "no complete answer within request_timeout (\(seconds) s)")
    case is NIOTooManyBytesError:
      return UpstreamFailure(.retryLater, message: "response body larger than 64 KiB")
    case let e as HTTPClientError:
      switch e {
      case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
        return UpstreamFailure(
          .retryLater, message: "no complete answer within request_timeout (\(seconds) s)")
      case .remoteConnectionClosed:
        return UpstreamFailure(.retryLater, message: "connection closed by the token endpoint")
      case .invalidURL, .emptyHost, .emptyScheme:
        return UpstreamFailure(.configurationWrong, message: "token_url cannot be used: \(e)")
      default:
        return UpstreamFailure(.retryLater, message: "request failed: \(e)")
      }
    case let e as NIOSSLError:
      return UpstreamFailure(.retryLater, message: "TLS failure: \(e)")
    case let e as BoringSSLError:
      return UpstreamFailure(.retryLater, message: "TLS failure: \(e)")
    case let e as NIOSSLExtraError:
      return UpstreamFailure(.retryLater, message: "TLS failure: \(e)")
    case let e as IOError:
      return UpstreamFailure(.retryLater, message: "cannot reach the token endpoint: \(e.description)")
    default:
      let text = "\(error)"
      if text.lowercased().contains("certificate") || text.contains("SSL") {
        return UpstreamFailure(.retryLater, message: "TLS failure: \(text)")
      }
      return UpstreamFailure(.retryLater, message: "cannot reach the token endpoint: \(text)")
    }
  }

  package func shutdown() async {
    let clients = lock.withLockedValue { c -> [HTTPClient] in
      let all = Array(c.values)
      c.removeAll()
      return all
    }
    for c in clients { try? await c.shutdown() }
  }
}

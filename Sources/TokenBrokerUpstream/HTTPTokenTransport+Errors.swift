import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

extension HTTPTokenTransport {
  /// What went wrong, for `last_error` and the journal: what failed and where, never a secret
  /// (neither the request nor the answer is quoted).
  static func classify(_ error: any Error, timeout: Double, url: EndpointURL, proxy: UpstreamProxy? = nil)
    -> UpstreamFailure
  {
    let seconds = timeout.rounded() == timeout ? "\(Int(timeout))" : "\(timeout)"
    let endpoint = "\(url.host):\(url.effectivePort)"
    let late = UpstreamFailure(
      .retryLater,
      message:
        "no complete answer within request_timeout (\(seconds) s)\(proxy.map { " (through the proxy \($0))" } ?? "")"
    )
    switch error {
    case is DeadlineExceeded:
      return late
    case let e as ProxyFailure:
      if let channel = (e.error as? NIOConnectionError)?.connectionErrors.first?.error as? ChannelError,
        case .connectTimeout = channel
      {
        return late
      }
      return UpstreamFailure(.retryLater, message: Self.describe(e))
    case is UpstreamExchangeHandler.BodyTooLarge:
      return UpstreamFailure(.retryLater, message: "response body larger than 64 KiB")
    case is UpstreamExchangeHandler.ConnectionClosed:
      return UpstreamFailure(.retryLater, message: "connection closed by the token endpoint")
    case let e as HTTPParserError:
      if e == .invalidEOFState {
        return UpstreamFailure(.retryLater, message: "connection closed by the token endpoint")
      }
      return UpstreamFailure(.retryLater, message: "the answer of \(endpoint) is not HTTP/1.1: \(e)")
    case let e as NIOConnectionError:
      if let dns = e.dnsAError ?? e.dnsAAAAError {
        return UpstreamFailure(
          .retryLater, message: "cannot resolve \(url.host) (DNS error: \(Self.describe(dns)))")
      }
      if let first = e.connectionErrors.first {
        if let channel = first.error as? ChannelError, case .connectTimeout = channel {
          return late
        }
        return UpstreamFailure(
          .retryLater, message: "cannot reach the token endpoint \(endpoint): \(Self.describe(first.error))")
      }
      return UpstreamFailure(.retryLater, message: "cannot reach the token endpoint \(endpoint)")
    case let e as NIOSSLError:
      return UpstreamFailure(.retryLater, message: "TLS failure with \(endpoint): \(e)")
    case let e as BoringSSLError:
      return UpstreamFailure(.retryLater, message: "TLS failure with \(endpoint): \(e)")
    case let e as NIOSSLExtraError:
      return UpstreamFailure(.retryLater, message: "TLS failure with \(endpoint): \(e)")
    case let e as ChannelError:
      if case .connectTimeout = e {
        return late
      }
      return UpstreamFailure(.retryLater, message: "cannot reach the token endpoint \(endpoint): \(e)")
    case is CancellationError:
      return UpstreamFailure(.retryLater, message: "request cancelled (the broker is stopping or reloading)")
    default:
      return UpstreamFailure(
        .retryLater, message: "cannot reach the token endpoint \(endpoint): \(Self.describe(error))")
    }
  }

  /// What went wrong on the way through `[broker] https_proxy`, naming the proxy and what to do.
  static func describe(_ failure: ProxyFailure) -> String {
    let proxy = "the proxy \(failure.proxy) ([broker] https_proxy)"
    switch failure.error {
    case let unusable as ProxyTunnelHandler.Unusable:
      guard case .refused(let status, let reason) = unusable.answer else {
        let what = if case .malformed(let what) = unusable.answer { what } else { "\(unusable.answer)" }
        return
          "\(proxy) did not answer CONNECT \(failure.target) as an HTTP proxy does (\(what)); check the address"
      }
      let schemes = unusable.schemes
      let hint =
        switch (status, failure.proxy.credential) {
        case (407, _) where !schemes.isEmpty && !schemes.contains("basic"):
          "it asks for \(schemes.joined(separator: " or ")) authentication, which token-broker does not speak "
            + "(Basic only): let the broker's host through without it"
        case (407, nil):
          "it asks for credentials: set [broker] https_proxy_user and https_proxy_password"
        case (407, let credential?):
          "it refused the credentials of user \(credential.user): check [broker] https_proxy_user and https_proxy_password"
        default:
          "check that it lets this host reach \(failure.target), or list the host in [broker] no_proxy"
        }
      return
        "\(proxy) refused CONNECT \(failure.target): \(status)\(reason.isEmpty ? "" : " \(reason)"); \(hint)"
    case let closed as ProxyTunnelHandler.Closed:
      return
        "\(proxy) closed the connection before the tunnel to \(failure.target) was open\(closed.cause.map { " (\(Self.describe($0)))" } ?? "")"
    case let e as NIOConnectionError:
      if let dns = e.dnsAError ?? e.dnsAAAAError {
        return "cannot resolve the host of \(proxy) (DNS error: \(Self.describe(dns)))"
      }
      if let first = e.connectionErrors.first {
        return "cannot reach \(proxy): \(Self.describe(first.error))"
      }
      return "cannot reach \(proxy)"
    case is IOError:
      return "cannot reach \(proxy): \(Self.describe(failure.error))"
    default:
      return "cannot reach \(failure.target) through \(proxy): \(Self.describe(failure.error))"
    }
  }

  /// An I/O error as the system names it (`Connection refused`), anything else as it describes itself.
  static func describe(_ error: any Error) -> String {
    if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
    if let address = error as? SocketAddressError, case .unknown(let host, _) = address {
      return "no address for \(host)"
    }
    if let unresolved = error as? ThreadPoolResolver.Unresolved { return unresolved.reason }
    return "\(error)"
  }
}

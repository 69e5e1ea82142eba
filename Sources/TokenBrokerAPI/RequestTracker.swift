import Logging
import NIOConcurrencyHelpers
import TokenBrokerServer

/// Wraps the socket API: counts the requests in flight, so that a graceful stop can wait for
/// them, and logs each answer with the caller's credentials (`event=served` for a token,
/// `TOKEN_BROKER_CALLER_UID=` / `_PID=` in the journal). Refusals are logged by the API itself
/// (`event=denied`). Never logs a token, a query string or a body.
package final class RequestTracker: ServerRequestHandler {
  let inner: any ServerRequestHandler
  let logger: Logger

  private struct State {
    var inFlight = 0
    var idleWaiters: [CheckedContinuation<Void, Never>] = []
  }
  private let state = NIOLockedValueBox(State())

  package init(inner: any ServerRequestHandler, logger: Logger) {
    self.inner = inner
    self.logger = logger
  }

  package var inFlight: Int { state.withLockedValue { $0.inFlight } }

  package func respondImmediately(to request: ServerRequest) -> ServerResponse? {
    guard let response = inner.respondImmediately(to: request) else { return nil }
    log(request, response)
    return response
  }

  package func handle(_ request: ServerRequest) async -> ServerResponse {
    state.withLockedValue { $0.inFlight += 1 }
    let response = await inner.handle(request)
    log(request, response)
    let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
      s.inFlight -= 1
      guard s.inFlight == 0 else { return [] }
      defer { s.idleWaiters.removeAll() }
      return s.idleWaiters
    }
    for w in waiters { w.resume() }
    return response
  }

  /// Returns once no request is being handled.
  package func idle() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let now = state.withLockedValue { s -> Bool in
        if s.inFlight == 0 { return true }
        s.idleWaiters.append(c)
        return false
      }
      if now { c.resume() }
    }
  }

  private func log(_ request: ServerRequest, _ response: ServerResponse) {
    let status = response.status.code
    guard status != 403, logger.logLevel <= .debug else { return }
    var meta: Logger.Metadata = [
      "method": "\(request.method.rawValue)", "path": "\(request.path)", "status": "\(status)",
    ]
    let tokenPrefix = "/v1/token/"
    if request.path.hasPrefix(tokenPrefix) {
      meta["provider"] = "\(request.path.dropFirst(tokenPrefix.count))"
      meta["event"] = status == 200 ? "served" : "not_served"
    } else {
      meta["event"] = "request"
    }
    if let peer = request.peer {
      meta["caller_uid"] = "\(peer.uid)"
      meta["caller_pid"] = "\(peer.pid)"
    }
    let message = status == 200 && request.path.hasPrefix(tokenPrefix) ? "token served" : "request answered"
    logger.debug("\(message): \(request.method.rawValue) \(request.path) \(status)", metadata: meta)
  }
}

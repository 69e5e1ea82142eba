import Dispatch
import TokenBrokerAPI
import TokenBrokerEngine

#if canImport(Glibc)
  import Glibc
#endif

/// SIGTERM/SIGINT/SIGHUP as events (Dispatch signal sources), delivered to a handler.
///
/// Create it first thing: until then SIGTERM has its default action and kills the process
/// (exit by signal instead of the clean 0). SIGPIPE is ignored for good: a client or the
/// journal stream going away must never kill the daemon.
///
/// `@unchecked`: the sources are set once in `init` and only cancelled (thread-safe) after.
package final class SignalEvents: @unchecked Sendable {
  package enum Event: Sendable, Equatable { case stop, reload }

  private let sources: [any DispatchSourceSignal]

  package init(_ handler: @escaping @Sendable (Event) -> Void) {
    signal(SIGPIPE, SIG_IGN)
    var sources: [any DispatchSourceSignal] = []
    for (sig, event) in [(SIGTERM, Event.stop), (SIGINT, .stop), (SIGHUP, .reload)] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { handler(event) }
      source.resume()
      sources.append(source)
    }
    self.sources = sources
  }

  deinit {
    for s in sources { s.cancel() }
  }
}

import Dispatch

#if canImport(Glibc)
  import Glibc
#endif

/// SIGTERM/SIGINT/SIGHUP as an async sequence (Dispatch signal sources).
public final class SignalEvents: @unchecked Sendable {
  public enum Event: Sendable { case stop, reload }

  public let events: AsyncStream<Event>
  private let sources: [any DispatchSourceSignal]

  public init() {
    let (stream, continuation) = AsyncStream<Event>.makeStream()
    var sources: [any DispatchSourceSignal] = []
    for (sig, event) in [(SIGTERM, Event.stop), (SIGINT, .stop), (SIGHUP, .reload)] {
      signal(sig, SIG_IGN)
      let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      s.setEventHandler { continuation.yield(event) }
      s.resume()
      sources.append(s)
    }
    self.events = stream
    self.sources = sources
  }

  deinit {
    for s in sources { s.cancel() }
  }
}

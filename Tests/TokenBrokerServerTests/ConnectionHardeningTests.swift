import Foundation
import Testing
import TokenBrokerServer
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The socket server's per-connection defences, on a real Unix socket against a small
/// handler of the test's own: blank-line floods, the per-uid connection cap.
///
/// The server runs on one event-loop thread (`ServerFixture`), so a second "witness"
/// connection can stand for "the server has got this far": a timer of the witness fires
/// after every timer due earlier, and an answer to the witness comes after everything the
/// test sent before on other connections was handled. No test waits for a duration.
@Suite struct ConnectionHardeningTests {
  /// Answers `/ping` and `/n/...` on the event loop (counting the latter) and everything
  /// under `/slow` through `handle`, which waits until the test opens the gate.
  final class Handler: ServerRequestHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var answered: [String] = []
    private var gateOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var slowArrivals = 0
    let bodyBytes: Int

    init(bodyBytes: Int = 0) { self.bodyBytes = bodyBytes }

    /// Requests answered so far, `/ping` left out.
    var count: Int { lock.withLock { answered.count } }
    /// Slow requests that reached `handle`.
    var slowCount: Int { lock.withLock { slowArrivals } }

    func respondImmediately(to request: ServerRequest) -> ServerResponse? {
      if request.path == "/ping" { return Self.text("pong") }
      if request.path.hasPrefix("/slow") { return nil }
      lock.withLock { answered.append(String(request.path)) }
      return Self.text(String(repeating: ".", count: bodyBytes) + "end \(request.path)")
    }

    func handle(_ request: ServerRequest) async -> ServerResponse {
      await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let now = lock.withLock {
          slowArrivals += 1
          if !gateOpen { waiters.append(c) }
          return gateOpen
        }
        if now { c.resume() }
      }
      lock.withLock { answered.append(String(request.path)) }
      return Self.text("end \(request.path)")
    }

    /// Lets every slow request (waiting or to come) be answered.
    func openGate() {
      let waiting = lock.withLock {
        gateOpen = true
        defer { waiters = [] }
        return waiters
      }
      for c in waiting { c.resume() }
    }

    static func text(_ s: String) -> ServerResponse {
      ServerResponse(status: .ok, contentType: "text/plain", body: Array((s + "\n").utf8))
    }
  }

  static func withServer(
    limits: ServerLimits = ServerLimits(), handler: Handler = Handler(),
    _ body: (ServerFixture, Handler) async throws -> Void
  ) async throws {
    let server = try await ServerFixture.start(handler: handler, limits: limits)
    do { try await body(server, handler) } catch {
      handler.openGate()
      await server.stop()
      throw error
    }
    handler.openGate()
    await server.stop()
  }

  struct Timeout: Error, CustomStringConvertible { var description: String }

  /// Polls `condition` until it holds, for at most 10 s.
  static func eventually(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
      guard ContinuousClock.now < deadline else { throw Timeout(description: "never: \(what)") }
      try await Task.sleep(for: .milliseconds(2))
    }
  }

  /// A request and its whole answer on `witness`: the server's one loop has handled
  /// everything that reached it before.
  static func roundTrip(_ witness: RawSocket) async throws {
    try witness.send("GET /ping HTTP/1.1\r\n\r\n")
    let answer = await witness.receive { $0.hasSuffix("pong\n") }
    guard answer.hasSuffix("pong\n") else { throw Timeout(description: "no answer to /ping: \(answer)") }
  }

  /// The server has closed `c`: a read gets EOF, or ECONNRESET when it closed with bytes
  /// of ours unread (not a receive timeout).
  static func closedByServer(_ c: RawSocket) async -> Bool {
    let fd = c.fd
    return await withCheckedContinuation { done in
      Thread {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        done.resume(returning: n == 0 || (n < 0 && errno == ECONNRESET))
      }.start()
    }
  }

  static func statusLines(_ answer: String) -> [String] {
    answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
  }

  // MARK: H1

  @Test func aFloodOfEmptyLinesGetsA400AndTheConnectionCloses() async throws {
    try await Self.withServer { server, _ in
      let c = try RawSocket(path: server.path)
      try c.send(String(repeating: "\r\n", count: 8192))
      let answer = await c.receive { $0.hasSuffix("}}\n") }
      #expect(Self.statusLines(answer) == ["400 Bad Request"], "answer: \(answer)")
      #expect(answer.contains(#""message":"more than 4 empty lines before the request line""#))
      #expect(await Self.closedByServer(c))
      // A request after a few empty lines is still served.
      let ok = try RawSocket(path: server.path)
      try ok.send("\r\n\r\nGET /n/1 HTTP/1.1\r\n\r\n")
      #expect(Self.statusLines(await ok.receive { $0.hasSuffix("end /n/1\n") }) == ["200 OK"])
    }
  }

  // MARK: M5

  @Test func oneUIDCannotTakeEveryConnectionSlot() async throws {
    var limits = ServerLimits()
    limits.maxConnectionsPerUID = 2
    limits.exemptUIDs = []
    try await Self.withServer(limits: limits) { server, _ in
      var held = [try RawSocket(path: server.path), try RawSocket(path: server.path)]
      for (i, c) in held.enumerated() {
        try c.send("GET /n/\(i) HTTP/1.1\r\n\r\n")
        #expect(Self.statusLines(await c.receive { $0.hasSuffix("end /n/\(i)\n") }) == ["200 OK"])
      }
      let third = try RawSocket(path: server.path)
      let refused = await third.receive { $0.hasSuffix("}}\n") }
      #expect(Self.statusLines(refused) == ["503 Service Unavailable"])
      #expect(refused.contains("Retry-After: 1"))
      #expect(refused.contains("too many connections from uid \(geteuid()) (2)"))
      #expect(await third.isClosedByPeer())
      // The held ones are still served; once one is gone, a new one is admitted.
      try held[1].send("GET /n/9 HTTP/1.1\r\n\r\n")
      #expect(Self.statusLines(await held[1].receive { $0.hasSuffix("end /n/9\n") }) == ["200 OK"])
      held.removeFirst()
      var admitted = false
      for _ in 0..<200 where !admitted {
        let c = try RawSocket(path: server.path)
        try? c.send("GET /ping HTTP/1.1\r\n\r\n")
        admitted = await c.receive { $0.hasSuffix("\n") && $0.contains("\r\n\r\n") }.hasSuffix("pong\n")
      }
      #expect(admitted)
    }
  }

  @Test func exemptUIDsAreNotCappedPerUID() async throws {
    var limits = ServerLimits()
    limits.maxConnectionsPerUID = 1
    #expect(limits.exemptUIDs == [0, geteuid()])
    try await Self.withServer(limits: limits) { server, _ in
      let clients = try (0..<3).map { _ in try RawSocket(path: server.path) }
      for (i, c) in clients.enumerated() {
        try c.send("GET /n/\(i) HTTP/1.1\r\n\r\n")
        #expect(Self.statusLines(await c.receive { $0.hasSuffix("end /n/\(i)\n") }) == ["200 OK"])
      }
    }
  }
}

import Foundation
import Testing
import TokenBrokerServer
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The socket server's per-connection defences, on a real Unix socket against a small
/// handler of the test's own: blank-line floods, clients that never read, half-closing
/// clients, timers against slow answers, the per-uid connection cap.
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
    try await until(what, within: 10, every: 0.002) { condition() }
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

  // MARK: H2

  /// A client that pipelines and never reads: once its answers fill the buffers, the
  /// server answers and reads nothing more from it (the handler's count stops), so what
  /// is queued for it stays bounded; once it reads, everything is answered, in order.
  @Test func aClientThatNeverReadsStopsBeingReadUntilItReads() async throws {
    let total = 2000
    try await Self.withServer(handler: Handler(bodyBytes: 2048)) { server, handler in
      let client = try RawSocket(path: server.path)
      let witness = try RawSocket(path: server.path)
      let pad = String(repeating: "p", count: 1000)
      let requests = Array((0..<total).map { "GET /n/\($0) HTTP/1.1\r\nX-Pad: \(pad)\r\n\r\n" }.joined().utf8)
      var sent = 0
      var stalledAt: Int?
      sending: while sent < requests.count {
        let n = requests.withUnsafeBytes {
          Glibc.send(client.fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if n > 0 {
          sent += n
          continue
        }
        try #require(errno == EAGAIN || errno == EWOULDBLOCK, "send: \(String(cString: strerror(errno)))")
        // The client cannot send more. Has the server stopped reading it, or is it
        // just behind? Let its loop go round a few times and look again.
        let before = handler.count
        for _ in 0..<3 { try await Self.roundTrip(witness) }
        let probe = requests.withUnsafeBytes {
          Glibc.send(client.fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if probe > 0 {
          sent += probe
        } else if handler.count == before {
          stalledAt = handler.count
          break sending
        }
      }
      let stalled = try #require(
        stalledAt, "the server read all \(total) requests of a client that never reads")
      #expect(stalled < total / 2)
      // Still nothing more while the client does not read.
      for _ in 0..<5 { try await Self.roundTrip(witness) }
      #expect(handler.count == stalled)

      // The client reads: everything is answered, in order.
      let rest = Array(requests[sent...])
      let fd = client.fd
      Thread {
        var off = 0
        while off < rest.count {
          let n = rest.withUnsafeBytes {
            Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL))
          }
          if n > 0 {
            off += n
          } else if errno != EAGAIN && errno != EWOULDBLOCK {
            return
          } else {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 1000)
          }
        }
      }.start()
      let answers = await client.receive { $0.hasSuffix("end /n/\(total - 1)\n") }
      let order = answers.components(separatedBy: "end /n/").dropFirst().compactMap {
        Int($0.prefix { $0 != "\n" })
      }
      #expect(order == Array(0..<total))
      #expect(handler.count == total)
    }
  }

  // MARK: L8

  @Test func aRequestSentBeforeAHalfCloseIsAnsweredThenTheConnectionCloses() async throws {
    try await Self.withServer { server, handler in
      let client = try RawSocket(path: server.path)
      let witness = try RawSocket(path: server.path)
      try client.send("GET /slow HTTP/1.1\r\n\r\n")
      shutdown(client.fd, Int32(SHUT_WR))
      try await Self.eventually("the slow request reaches the handler") { handler.slowCount == 1 }
      // The server has seen the end of the client's input before the answer is ready.
      try await Self.roundTrip(witness)
      try await Self.roundTrip(witness)
      handler.openGate()
      let answer = await client.receive { _ in false }  // to EOF
      #expect(Self.statusLines(answer) == ["200 OK"], "answer: \(answer.debugDescription)")
      #expect(answer.hasSuffix("\r\n\r\nend /slow\n"))
    }
  }

  @Test func pipelinedRequestsSentBeforeAHalfCloseAreAllAnsweredInOrder() async throws {
    try await Self.withServer { server, handler in
      let client = try RawSocket(path: server.path)
      let witness = try RawSocket(path: server.path)
      try client.send("GET /slow/1 HTTP/1.1\r\n\r\nGET /n/2 HTTP/1.1\r\n\r\nGET /slow/3 HTTP/1.1\r\n\r\n")
      shutdown(client.fd, Int32(SHUT_WR))
      try await Self.eventually("the first request reaches the handler") { handler.slowCount == 1 }
      try await Self.roundTrip(witness)
      try await Self.roundTrip(witness)
      handler.openGate()
      let answer = await client.receive { _ in false }  // to EOF
      #expect(
        Self.statusLines(answer) == ["200 OK", "200 OK", "200 OK"], "answer: \(answer.debugDescription)")
      let order = answer.components(separatedBy: "end ").dropFirst().map { $0.prefix { $0 != "\n" } }
      #expect(order == ["/slow/1", "/n/2", "/slow/3"])
    }
  }

  @Test func aHalfCloseWithoutAWholeRequestClosesWithoutAnAnswer() async throws {
    try await Self.withServer { server, _ in
      let nothing = try RawSocket(path: server.path)
      shutdown(nothing.fd, Int32(SHUT_WR))
      #expect(await nothing.receive { _ in false } == "")
      let partial = try RawSocket(path: server.path)
      try partial.send("GET /n/1 HTTP/1.1\r\nHost:")
      shutdown(partial.fd, Int32(SHUT_WR))
      #expect(await partial.receive { _ in false } == "")
    }
  }

  // MARK: L7

  /// A second request's bytes read while the first's answer is being computed used to
  /// start the 408 deadline, and the 408 went out in place of the first answer.
  @Test func noRequestTimeoutIsWrittenWhileAnEarlierAnswerIsPending() async throws {
    var limits = ServerLimits()
    limits.requestDeadline = 0.2
    try await Self.withServer(limits: limits) { server, handler in
      let client = try RawSocket(path: server.path)
      // The first read of a connection takes 2048 bytes: the slow request fits in it, the
      // start of the next one arrives in a second read while the slow one is pending.
      let head = "GET /slow HTTP/1.1\r\nX-Pad: "
      let slow = head + String(repeating: "p", count: 2000 - head.utf8.count - 4) + "\r\n\r\n"
      try client.send(slow + "GET /n/2 HTTP/1.1\r\nX-Pad: " + String(repeating: "q", count: 200))
      try await Self.eventually("the slow request reaches the handler") { handler.slowCount == 1 }
      // A witness whose request deadline started later expires: the client's would have too.
      let witness = try RawSocket(path: server.path)
      try witness.send("GET /n/3 HTTP/1.1\r\nHost:")
      #expect(Self.statusLines(await witness.receive { $0.hasSuffix("}}\n") }) == ["408 Request Timeout"])
      var p = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
      #expect(poll(&p, 1, 0) == 0, "the client got something before its first answer")
      handler.openGate()
      // The answer, then the unfinished second request times out from there.
      let answer = await client.receive { _ in false }
      #expect(
        Self.statusLines(answer) == ["200 OK", "408 Request Timeout"], "answer: \(answer.debugDescription)")
      #expect(answer.contains("end /slow\n"))
    }
  }

  /// The idle clock used to start when a request was dispatched, so a slow answer was cut.
  @Test func theIdleTimerDoesNotCloseAConnectionWhoseAnswerIsPending() async throws {
    var limits = ServerLimits()
    limits.idleTimeout = 0.2
    try await Self.withServer(limits: limits) { server, handler in
      let client = try RawSocket(path: server.path)
      try client.send("GET /slow HTTP/1.1\r\n\r\n")
      try await Self.eventually("the slow request reaches the handler") { handler.slowCount == 1 }
      // A witness connected later sits idle and is closed: the client's idle deadline,
      // had it one, would have passed.
      let witness = try RawSocket(path: server.path)
      #expect(await witness.isClosedByPeer())
      var p = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
      #expect(poll(&p, 1, 0) == 0, "the connection was closed (or answered) before its answer was ready")
      handler.openGate()
      let answer = await client.receive { $0.hasSuffix("end /slow\n") }
      #expect(Self.statusLines(answer) == ["200 OK"])
      // Once answered, the idle timeout applies again.
      #expect(await client.isClosedByPeer())
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

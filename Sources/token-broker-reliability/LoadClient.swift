import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Many concurrent clients of the daemon's socket on one poll(2) loop: each client has
/// one request in flight at a time (keep-alive; every `churnEvery`-th client opens a
/// new connection per request, as `tokenctl` does) and checks every answer.
final class LoadClient {
  enum Kind: CaseIterable {
    case tokenJSON, tokenPlain, apiKey, status

    var request: [UInt8] {
      switch self {
      case .tokenJSON:
        return Array(
          "GET /v1/token/energy HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n".utf8)
      case .tokenPlain:
        return Array("GET /v1/token/energy HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n".utf8)
      case .apiKey:
        return Array("GET /v1/token/keys HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
      case .status:
        return Array("GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
      }
    }

    /// 1 in 100 a status, 1 in 10 each a plain-text token and an API key, else a JSON token.
    static func forRequest(_ n: Int) -> Kind {
      if n % 100 == 0 { return .status }
      switch n % 10 {
      case 1: return .tokenPlain
      case 2: return .apiKey
      default: return .tokenJSON
      }
    }
  }

  struct Connection {
    var fd: Int32 = -1
    var out: [UInt8] = []
    var sent = 0
    var input: [UInt8] = []
    var kind = Kind.tokenJSON
    var inFlight = false
    var startedAt = 0.0
    var churn = false
    var retryAt = 0.0
    /// Waiting in `ready` for its next request.
    var queued = true
  }

  struct Stats {
    var completed = 0
    var errors = 0
    var errorKinds: [String: Int] = [:]
    var examples: [String] = []
    var connects = 0
    var connectRetries = 0
    var byKind: [String: Int] = [:]
    /// Latency histogram: bucket k holds answers within [2^k, 2^(k+1)) µs.
    var latency = [Int](repeating: 0, count: 40)
    var maxLatency = 0.0

    mutating func error(_ kind: String, _ detail: String) {
      errors += 1
      errorKinds[kind, default: 0] += 1
      if examples.count < 10 { examples.append("\(kind): \(detail)") }
    }

    func percentile(_ p: Double) -> Double {
      let total = latency.reduce(0, +)
      guard total > 0 else { return 0 }
      var seen = 0
      for (k, n) in latency.enumerated() {
        seen += n
        if Double(seen) >= p * Double(total) { return Double(1 << (k + 1)) / 1e6 }
      }
      return maxLatency
    }
  }

  let socketPath: String
  let apiKey: String
  /// Whether an access token is one the upstream issued (it refreshes the answer on a miss).
  let isIssued: (String) -> Bool
  var connections: [Connection]
  var stats = Stats()
  /// Connections waiting for their next request, first come first served (every client
  /// gets its share, so no keep-alive connection idles into the server's idle timeout).
  private var ready: [Int] = []
  private var readyHead = 0
  private var chunk = [UInt8](repeating: 0, count: 16384)
  private var issued = 0
  private var answerTimeout = 30.0

  init(
    socketPath: String, clients: Int, churnEvery: Int, apiKey: String, isIssued: @escaping (String) -> Bool
  ) {
    self.socketPath = socketPath
    self.apiKey = apiKey
    self.isIssued = isIssued
    connections = (0..<clients).map { i in
      var c = Connection()
      c.churn = churnEvery > 0 && i % churnEvery == churnEvery - 1
      return c
    }
    ready = Array(0..<clients)
  }

  deinit {
    for c in connections where c.fd >= 0 { close(c.fd) }
  }

  /// Sends requests until `total` were answered (or failed), or — with `until` — until that
  /// monotonic time, at most `rate` requests per second (0: as fast as answers come).
  func run(total: Int?, until: Double?, rate: Double, progress: (Stats) -> Void) {
    let start = monotonic()
    var issuedHere = 0
    var lastProgress = start
    var fds: [pollfd] = []
    var owners: [Int] = []
    while true {
      let now = monotonic()
      let timeUp = until.map { now >= $0 } ?? false
      let budgetLeft = total.map { issuedHere < $0 } ?? true
      // Issue what the budget and the rate allow.
      var deferred: [Int] = []
      while !timeUp, budgetLeft || total == nil, let i = popReady() {
        connections[i].queued = false
        if let total, issuedHere >= total {
          enqueue(i, front: true)
          break
        }
        if rate > 0, Double(issuedHere) >= rate * (now - start) {
          enqueue(i, front: true)
          break
        }
        if connections[i].retryAt > now {
          deferred.append(i)
          continue
        }
        if issue(i, now: now) { issuedHere += 1 }
      }
      for i in deferred { enqueue(i) }
      let inFlight = connections.reduce(0) { $0 + ($1.inFlight ? 1 : 0) }
      if inFlight == 0, timeUp || !(total.map { issuedHere < $0 } ?? true) { break }
      fds.removeAll(keepingCapacity: true)
      owners.removeAll(keepingCapacity: true)
      for (i, c) in connections.enumerated() where c.fd >= 0 {
        let writing = c.inFlight && c.sent < c.out.count
        fds.append(pollfd(fd: c.fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0))
        owners.append(i)
      }
      let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 2) }
      if n > 0 {
        let now = monotonic()
        for (k, p) in fds.enumerated() where p.revents != 0 && connections[owners[k]].fd == p.fd {
          service(owners[k], events: p.revents, now: now)
        }
      }
      let after = monotonic()
      if after - lastProgress >= 1 {
        lastProgress = after
        for i in connections.indices
        where connections[i].inFlight && after - connections[i].startedAt > answerTimeout {
          stats.error("timeout", "no answer within \(Int(answerTimeout)) s")
          drop(i)
        }
        progress(stats)
      }
    }
  }

  /// Starts request number `issued` on connection `i`; false when it must wait (backlog full).
  private func issue(_ i: Int, now: Double) -> Bool {
    if connections[i].fd < 0 {
      switch connect(i) {
      case .connected: break
      case .retry:
        stats.connectRetries += 1
        connections[i].retryAt = now + 0.002
        enqueue(i, front: true)
        return false
      case .failed(let why):
        stats.error("connect", why)
        connections[i].retryAt = now + 0.05
        enqueue(i, front: true)
        return true
      }
    }
    let kind = Kind.forRequest(issued)
    issued += 1
    var request = kind.request
    if connections[i].churn {
      request.removeLast(2)
      request += Array("Connection: close\r\n\r\n".utf8)
    }
    connections[i].kind = kind
    connections[i].out = request
    connections[i].sent = 0
    connections[i].inFlight = true
    connections[i].startedAt = now
    flush(i)
    return true
  }

  private enum ConnectResult {
    case connected, retry
    case failed(String)
  }

  private func connect(_ i: Int) -> ConnectResult {
    let fd = socket(
      AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failed("socket: \(String(cString: strerror(errno)))") }
    let rc = (try? UnixSocketAddress(socketPath))?.connect(fd) ?? -1
    if rc != 0 && errno != EINPROGRESS {
      let e = errno
      close(fd)
      if e == EAGAIN { return .retry }
      return .failed("connect: \(String(cString: strerror(e)))")
    }
    connections[i].fd = fd
    connections[i].input.removeAll(keepingCapacity: true)
    stats.connects += 1
    return .connected
  }

  private func flush(_ i: Int) {
    let fd = connections[i].fd
    while connections[i].sent < connections[i].out.count {
      let n = connections[i].out.withUnsafeBytes { raw in
        send(fd, raw.baseAddress! + connections[i].sent, raw.count - connections[i].sent, Int32(MSG_NOSIGNAL))
      }
      if n > 0 {
        connections[i].sent += n
        continue
      }
      if n < 0 && errno == EINTR { continue }
      if n < 0 && errno == EAGAIN { return }  // poll(2) says when it can take more
      // The peer went away; what it answered (if anything) is still to be read.
      return
    }
  }

  private func service(_ i: Int, events: Int16, now: Double) {
    guard connections[i].fd >= 0 else { return }
    if events & Int16(POLLOUT) != 0 { flush(i) }
    var eof = false
    while true {
      let n = chunk.withUnsafeMutableBytes {
        recv(connections[i].fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT))
      }
      if n > 0 {
        connections[i].input += chunk[0..<n]
        if n < chunk.count { break }
        continue
      }
      if n == 0 {
        eof = true
        break
      }
      if errno == EINTR { continue }
      if errno != EAGAIN { eof = true }
      break
    }
    while let answer = parseAnswer(i) {
      complete(i, answer, now: now)
      if answer.close || connections[i].churn {
        drop(i)
        return
      }
    }
    if eof {
      if connections[i].inFlight {
        let got =
          connections[i].input.isEmpty ? "nothing" : "\(connections[i].input.count) bytes of an answer"
        stats.error("closed", "the daemon closed the connection after \(got)")
      }
      drop(i)
    }
  }

  struct Answer {
    var status: Int
    var close: Bool
    var contentType: String
    var body: [UInt8]
  }

  private func parseAnswer(_ i: Int) -> Answer? {
    let input = connections[i].input
    guard let end = find(input, [13, 10, 13, 10]) else { return nil }
    let statusLine = Array("HTTP/1.1 ".utf8)
    guard end >= 12, input.starts(with: statusLine),
      let status = Int(String(decoding: input[9..<12], as: UTF8.self))
    else {
      stats.error(
        "malformed", "answer starts \(String(decoding: input.prefix(40), as: UTF8.self).debugDescription)")
      connections[i].input.removeAll()
      return Answer(status: 0, close: true, contentType: "", body: [])
    }
    var length = 0
    var close = false
    var type = ""
    var lineStart = (find(input, [13, 10]) ?? end) + 2
    while lineStart < end {
      var lineEnd = lineStart
      while lineEnd < end && input[lineEnd] != 13 { lineEnd += 1 }
      let line = input[lineStart..<lineEnd]
      if let v = Self.value(of: "content-length", in: line) {
        length = Int(String(decoding: v, as: UTF8.self).trimmingCharacters(in: .whitespaces)) ?? 0
      } else if let v = Self.value(of: "connection", in: line) {
        close = String(decoding: v, as: UTF8.self).lowercased().contains("close")
      } else if let v = Self.value(of: "content-type", in: line) {
        type = String(decoding: v, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
      }
      lineStart = lineEnd + 2
    }
    guard input.count >= end + 4 + length else { return nil }
    let body = Array(input[(end + 4)..<(end + 4 + length)])
    connections[i].input.removeFirst(end + 4 + length)
    return Answer(status: status, close: close, contentType: type, body: body)
  }

  /// The value of header line `line` when its name is `name` (ASCII, case-insensitive).
  private static func value(of name: String, in line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
    let n = name.utf8.count
    guard line.count > n, line[line.startIndex + n] == UInt8(ascii: ":") else { return nil }
    for (k, b) in name.utf8.enumerated() where line[line.startIndex + k] | 0x20 != b {
      return nil
    }
    return line[(line.startIndex + n + 1)...]
  }

  private func complete(_ i: Int, _ answer: Answer, now: Double) {
    let kind = connections[i].kind
    guard connections[i].inFlight else {
      stats.error("unsolicited", "an answer (\(answer.status)) to no request")
      return
    }
    connections[i].inFlight = false
    if answer.status == 0 { return }
    let elapsed = now - connections[i].startedAt
    stats.maxLatency = max(stats.maxLatency, elapsed)
    let micros = max(1, Int(elapsed * 1e6))
    stats.latency[min(39, Int.bitWidth - micros.leadingZeroBitCount - 1)] += 1
    if let problem = check(answer, kind: kind) {
      stats.error(answer.status == 200 ? "wrong answer" : "status \(answer.status)", problem)
    } else {
      stats.completed += 1
      stats.byKind["\(kind)", default: 0] += 1
    }
    if !connections[i].churn && !answer.close { enqueue(i) }
  }

  private func check(_ answer: Answer, kind: Kind) -> String? {
    guard answer.status == 200 else {
      return "\(kind): \(String(decoding: answer.body.prefix(200), as: UTF8.self))"
    }
    switch kind {
    case .tokenJSON:
      let prefix = Array(#"{"provider":"energy","access_token":""#.utf8)
      guard answer.body.starts(with: prefix) else {
        return "token answer \(String(decoding: answer.body.prefix(80), as: UTF8.self))"
      }
      let rest = answer.body[prefix.count...]
      guard let quote = rest.firstIndex(of: UInt8(ascii: "\"")) else { return "token answer without a token" }
      let token = String(decoding: rest[..<quote], as: UTF8.self)
      return isIssued(token) ? nil : "a token the upstream never issued"
    case .tokenPlain:
      guard answer.contentType.hasPrefix("text/plain") else { return "plain token as \(answer.contentType)" }
      return isIssued(String(decoding: answer.body, as: UTF8.self))
        ? nil : "a plain token the upstream never issued"
    case .apiKey:
      return find(answer.body, Array(apiKey.utf8)) != nil ? nil : "the API key answer lacks the key"
    case .status:
      return find(answer.body, Array(#""providers":["#.utf8)) != nil ? nil : "a status without providers"
    }
  }

  /// Closes connection `i`; it reconnects for its next request.
  private func drop(_ i: Int) {
    guard connections[i].fd >= 0 else { return }
    close(connections[i].fd)
    connections[i].fd = -1
    connections[i].input.removeAll(keepingCapacity: true)
    connections[i].inFlight = false
    enqueue(i)
  }

  private func enqueue(_ i: Int, front: Bool = false) {
    guard !connections[i].queued else { return }
    connections[i].queued = true
    if front && readyHead > 0 {
      readyHead -= 1
      ready[readyHead] = i
    } else if front {
      ready.insert(i, at: 0)
    } else {
      ready.append(i)
    }
  }

  private func popReady() -> Int? {
    guard readyHead < ready.count else { return nil }
    let i = ready[readyHead]
    readyHead += 1
    if readyHead > 4096 && readyHead * 2 > ready.count {
      ready.removeFirst(readyHead)
      readyHead = 0
    }
    return i
  }

  private func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
    guard hay.count >= needle.count, !needle.isEmpty else { return nil }
    var k = 0
    while k <= hay.count - needle.count {
      if hay[k] == needle[0] && hay[k..<(k + needle.count)].elementsEqual(needle) { return k }
      k += 1
    }
    return nil
  }
}

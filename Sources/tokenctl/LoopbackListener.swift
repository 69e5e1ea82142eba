#if canImport(Glibc)
  import Glibc
#endif

/// The browser's end of `tokenctl login` (README "Logging in on a headless server"): a
/// socket listening on 127.0.0.1, and a blocking poll(2) loop over it, the connections it
/// accepted and stdin, until the browser asks for the redirect path or an address is pasted.
///
/// Connections are read as they become readable, never one at a time: a browser opens
/// spare connections that send nothing, and waiting on one of them would hide the real
/// request. Only the request line is looked at; a request is at most 8 KiB.
struct LoopbackListener {
  let fd: Int32
  let port: Int

  /// Listens on 127.0.0.1:`port` (0: any free port); exits with a sentence when it cannot.
  static func open(port: Int) -> LoopbackListener {
    let fd = socket(
      AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { fail("cannot open a socket: \(String(cString: strerror(errno)))", Exit.failure) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    let bound = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
      let e = errno
      close(fd)
      if e == EADDRINUSE {
        fail(
          "port \(port) on 127.0.0.1 is in use (another tokenctl login?); stop that, "
            + "or use --paste", Exit.failure)
      }
      fail("cannot listen on 127.0.0.1:\(port): \(String(cString: strerror(e)))", Exit.failure)
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return LoopbackListener(fd: fd, port: Int(UInt16(bigEndian: addr.sin_port)))
  }

  /// Answers a browser's connection with a small HTML page and closes it.
  static func answer(_ connection: Int32, status: String, html: String) {
    // Blocking again, with a deadline: the page is small, the browser may be slow.
    _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) & ~O_NONBLOCK)
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let page = Array(html.utf8)
    let bytes =
      Array(
        ("HTTP/1.1 \(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(page.count)\r\n"
          + "Cache-Control: no-store\r\nConnection: close\r\n\r\n").utf8) + page
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes {
        send(connection, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
      }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { break }
      sent += n
    }
    shutdown(connection, Int32(SHUT_WR))
    // What the browser sent beyond the part read (an oversized request) is read and dropped:
    // closing with unread bytes resets the connection, and the browser may lose the page.
    var drop = [UInt8](repeating: 0, count: 4096)
    for _ in 0..<16 {
      let n = drop.withUnsafeMutableBytes { recv(connection, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
      if n <= 0 { break }
    }
    close(connection)
  }

  /// `text` safe inside HTML.
  static func escapeHTML(_ text: String) -> String {
    var out = ""
    for c in text {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default: out.append(c)
      }
    }
    return out
  }

  static func page(_ message: String) -> String {
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>tokenctl login</title></head>"
      + "<body><p>\(escapeHTML(message))</p></body></html>\n"
  }
}

/// What ended a ``RedirectWait``.
enum RedirectEvent {
  /// The browser asked for the redirect path: its request target, and the connection to answer.
  case browser(target: String, connection: Int32)
  /// A line pasted on stdin, trimmed.
  case pasted(String)
  case timedOut
  /// Nothing left to wait on: no listener, and stdin reached its end.
  case stdinClosed
}

/// Waits on the listener (when there is one) and stdin; see ``LoopbackListener``.
struct RedirectWait {
  static let maxRequest = 8192
  static let maxConnections = 32

  var listener: LoopbackListener?
  /// The redirect URI's path: requests for any other path get a 404.
  var path: String
  private var readingStdin = true
  private var pasted: [UInt8] = []
  private var connections: [(fd: Int32, bytes: [UInt8])] = []

  init(listener: LoopbackListener?, path: String) {
    self.listener = listener
    self.path = path
  }

  /// The next event, or `.timedOut` once the monotonic clock passes `deadline` (ms).
  mutating func next(until deadline: Int64) -> RedirectEvent {
    while true {
      var fds: [pollfd] = []
      if let listener { fds.append(pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)) }
      if readingStdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
      for c in connections { fds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)) }
      if fds.isEmpty { return .stdinClosed }
      let left = deadline - monotonicMilliseconds()
      if left <= 0 { return .timedOut }
      let rc = poll(&fds, nfds_t(fds.count), Int32(min(left, 60_000)))
      if rc < 0 && errno == EINTR { continue }
      guard rc >= 0 else { fail("poll failed: \(String(cString: strerror(errno)))", Exit.failure) }
      for p in fds where p.revents != 0 {
        if let listener, p.fd == listener.fd {
          acceptAll(listener)
        } else if p.fd == 0 {
          if let line = readStdin() { return .pasted(line) }
        } else if let event = read(connection: p.fd) {
          return event
        }
      }
    }
  }

  /// The first whole line on stdin (or what is left at its end), trimmed; nil for none yet.
  private mutating func readStdin() -> String? {
    var chunk = [UInt8](repeating: 0, count: 4096)
    let n = chunk.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress!, $0.count) }
    if n < 0 && (errno == EINTR || errno == EAGAIN) { return nil }
    if n <= 0 {
      // The end of stdin (/dev/null, a closed pipe): only the browser is left to wait for.
      readingStdin = false
      let rest = String(decoding: pasted, as: UTF8.self)
      pasted = []
      return Self.trim(rest)
    }
    pasted += chunk[0..<n]
    while let newline = pasted.firstIndex(of: 10) {
      let line = String(decoding: pasted[..<newline], as: UTF8.self)
      pasted.removeSubrange(...newline)
      if let trimmed = Self.trim(line) { return trimmed }
    }
    return nil
  }

  static func trim(_ s: String) -> String? {
    let t = s.drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed()
    return t.isEmpty ? nil : String(t)
  }

  private mutating func acceptAll(_ listener: LoopbackListener) {
    while true {
      let c = accept(listener.fd, nil, nil)
      guard c >= 0 else { return }
      _ = fcntl(c, F_SETFD, FD_CLOEXEC)
      _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
      connections.append((c, []))
      if connections.count > Self.maxConnections { close(connections.removeFirst().fd) }
    }
  }

  /// Reads what a connection sent; an event once it asked for the redirect path.
  private mutating func read(connection fd: Int32) -> RedirectEvent? {
    guard let i = connections.firstIndex(where: { $0.fd == fd }) else { return nil }
    var chunk = [UInt8](repeating: 0, count: Self.maxRequest)
    let room = Self.maxRequest - connections[i].bytes.count
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, room, 0) }
    if n < 0 && (errno == EINTR || errno == EAGAIN) { return nil }
    guard n > 0 else {
      close(fd)
      connections.remove(at: i)
      return nil
    }
    connections[i].bytes += chunk[0..<n]
    let bytes = connections[i].bytes
    let ended = find([13, 10, 13, 10], in: bytes) != nil
    guard ended || bytes.count >= Self.maxRequest else { return nil }
    connections.remove(at: i)
    guard ended, let lineEnd = find([13, 10], in: bytes) else {
      LoopbackListener.answer(
        fd, status: "431 Request Header Fields Too Large", html: LoopbackListener.page("Too large."))
      return nil
    }
    let parts = String(decoding: bytes[..<lineEnd], as: UTF8.self).split(separator: " ")
    guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
      LoopbackListener.answer(fd, status: "400 Bad Request", html: LoopbackListener.page("Bad request."))
      return nil
    }
    let target = String(parts[1])
    let (requestPath, query) = Self.split(target)
    guard parts[0] == "GET", requestPath == path else {
      LoopbackListener.answer(fd, status: "404 Not Found", html: LoopbackListener.page("Not found."))
      return nil
    }
    guard Self.hasParameter("code", in: query) || Self.hasParameter("error", in: query) else {
      let message = "This address carries no code: open the authorization address that tokenctl printed."
      LoopbackListener.answer(fd, status: "400 Bad Request", html: LoopbackListener.page(message))
      return nil
    }
    return .browser(target: target, connection: fd)
  }

  /// A target's path and its query (without `?` and fragment).
  static func split(_ target: String) -> (path: String, query: String) {
    let noFragment = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
    let parts = noFragment.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
  }

  /// True when the query (`a=1&b=2`) has a parameter `name`.
  static func hasParameter(_ name: String, in query: String) -> Bool {
    query.split(separator: "&").contains { $0 == name || $0.hasPrefix(name + "=") }
  }

  private func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) {
      return i
    }
    return nil
  }
}

/// Milliseconds on the monotonic clock.
func monotonicMilliseconds() -> Int64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

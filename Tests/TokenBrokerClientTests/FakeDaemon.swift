import Foundation
import Synchronization
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// A stand-in for token-brokerd on a Unix socket, for tokenctl's own tests: each request is
/// answered by `answer` (status and JSON body) and recorded. One connection at a time, as
/// tokenctl sends one request at a time.
final class FakeDaemon: Sendable {
  struct Request: Sendable, Equatable {
    var method: String
    var target: String
    var body: String
  }

  let path: String
  private let fd: Int32
  private let log = Locked<[Request]>([])

  init(answer: @escaping @Sendable (Request) -> (status: Int, body: String)) throws {
    path = try TempDirectory.make("tb-fake") + "/d.sock"
    let fd = try UnixSocketAddress.boundSocket(type: Int32(SOCK_STREAM.rawValue), path: path)
    guard listen(fd, 8) == 0 else {
      close(fd)
      throw SetupError.errno("listen \(path)")
    }
    self.fd = fd
    let log = self.log
    Thread {
      while true {
        let c = accept(fd, nil, nil)
        guard c >= 0 else { return }
        if let request = Self.read(c) {
          log.withLock { $0.append(request) }
          let (status, body) = answer(request)
          let bytes = Array(body.utf8)
          let head =
            "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n"
            + "Connection: close\r\n\r\n"
          let all = Array(head.utf8) + bytes
          _ = all.withUnsafeBytes { send(c, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        close(c)
      }
    }.start()
  }

  deinit {
    shutdown(fd, Int32(SHUT_RDWR))
    close(fd)
  }

  var requests: [Request] { log.value }

  /// The request head and its Content-Length body.
  private static func read(_ c: Int32) -> Request? {
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    var headEnd: Int?
    while true {
      if headEnd == nil, data.count >= 4 {
        headEnd = (0...(data.count - 4)).first { data[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) }
          .map { $0 + 4 }
      }
      if let h = headEnd {
        let head = String(decoding: data[..<h], as: UTF8.self)
        let length =
          head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
          .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        if data.count - h >= length {
          let line = head.split(separator: "\r\n")[0].split(separator: " ")
          return Request(
            method: String(line[0]), target: String(line[1]),
            body: String(decoding: data[h..<(h + length)], as: UTF8.self))
        }
      }
      let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress!, $0.count, 0) }
      guard n > 0 else { return nil }
      data += chunk[0..<n]
    }
  }
}

/// A tokenctl that runs while the test plays the browser: stderr through a FIFO, read as
/// it comes (no sleeps: the test waits for the line it needs, with a deadline), stdin from
/// a file or a FIFO the test writes to.
final class LiveTokenctl: Sendable {
  let child: ChildProcess
  private let directory: TempDirectory
  private let stderrFD: Int32
  private let text = Locked("")
  /// The write end of stdin when `stdin` was `.pipe`.
  let stdinFD: Int32?

  /// What a tokenctl that ran to its end left.
  struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  enum Input {
    case devNull, file(String), pipe
  }

  init(_ arguments: [String], stdin: Input = .devNull) throws {
    directory = try TempDirectory("tb-ctl")
    let fifo = directory.file("stderr")
    guard mkfifo(fifo, 0o600) == 0 else { throw SetupError.errno("mkfifo") }
    // Read and write: the FIFO never reports an end, whether or not tokenctl has opened it.
    stderrFD = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)
    let tokenctl = try BuiltBinaries.path("tokenctl")
    var argv = [tokenctl] + arguments
    var input: String?
    switch stdin {
    case .devNull: stdinFD = nil
    case .file(let contents):
      input = try directory.write("stdin", contents)
      stdinFD = nil
    case .pipe:
      let path = directory.file("stdin")
      guard mkfifo(path, 0o600) == 0 else { throw SetupError.errno("mkfifo") }
      input = path
      // Read and write, so that opening it does not wait for tokenctl's shell to open it.
      stdinFD = open(path, O_RDWR | O_CLOEXEC)
    }
    if let input { argv = ["/bin/sh", "-c", "exec \"$0\" \"$@\" < '\(input)'"] + argv }
    child = try ChildProcess.start(
      argv, environment: ChildProcess.minimalEnvironment(), stdout: directory.file("stdout"), stderr: fifo)
  }

  deinit {
    child.terminateForcibly()
    close(stderrFD)
    if let stdinFD { close(stdinFD) }
  }

  /// Waits until stderr holds `needle`; all of stderr so far.
  func waitForStderr(_ needle: String, within seconds: Double = 20) async throws -> String {
    try await offload { [self] in
      let end = Date().addingTimeInterval(seconds)
      while true {
        drain()
        let now = text.value
        if now.contains(needle) { return now }
        guard Date() < end, child.isRunning else {
          throw SetupError(
            "tokenctl did not print '\(needle)' (exited: \(!child.isRunning)); stderr:\n\(now)")
        }
        var p = pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 100)
      }
    }
  }

  /// Writes `line` and a newline to tokenctl's stdin.
  func paste(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(stdinFD!, $0.baseAddress!, $0.count) }
  }

  /// Waits for the exit; the status, stdout and the whole stderr.
  func finish(within seconds: Double = 30) async throws -> Finished {
    let status = try await offload { [self] in try child.waitForExit(within: seconds) }
    drain()
    return Finished(status: status, stdout: child.stdout, stderr: text.value)
  }

  private func drain() {
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = chunk.withUnsafeMutableBytes { Glibc.read(stderrFD, $0.baseAddress!, $0.count) }
      guard n > 0 else { return }
      text.withLock { $0 += String(decoding: chunk[0..<n], as: UTF8.self) }
    }
  }

  /// The port of the `ssh -L PORT:127.0.0.1:PORT` line.
  static func port(in stderr: String) -> Int? {
    guard let r = stderr.range(of: "ssh -L ") else { return nil }
    return Int(stderr[r.upperBound...].prefix { $0.isNumber })
  }
}

/// A browser's request to 127.0.0.1:`port`: the whole answer (head and body).
func browserGet(port: Int, _ target: String) async throws -> String {
  let connection = try LoopbackConnection(port: port)
  try connection.send("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: test\r\n\r\n")
  return try await offload { connection.receiveAll() }
}

/// A TCP connection to 127.0.0.1; closed on deinit.
final class LoopbackConnection: Sendable {
  let fd: Int32

  init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var tv = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard rc == 0 else {
      close(fd)
      throw SetupError.errno("connect 127.0.0.1:\(port)")
    }
  }

  deinit { close(fd) }

  func send(_ text: String) throws {
    let bytes = Array(text.utf8)
    guard
      bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count
    else { throw SetupError.errno("send") }
  }

  /// Everything until the peer closes (or 20 s pass).
  func receiveAll() -> String {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      guard n > 0 else { break }
      data += chunk[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
  }
}

/// A value behind a lock, shareable by reference (a `Mutex` itself cannot be captured).
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>
  init(_ value: Value) { mutex = Mutex(value) }
  var value: Value { mutex.withLock { $0 } }
  func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

extension LoopbackConnection {
  /// A port free on 127.0.0.1 a moment ago (bound to 0, then closed).
  static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
        bind(fd, p, length) == 0 ? getsockname(fd, p, &length) : -1
      }
    }
    guard rc == 0 else { throw SetupError.errno("bind 127.0.0.1:0") }
    return Int(UInt16(bigEndian: addr.sin_port))
  }
}

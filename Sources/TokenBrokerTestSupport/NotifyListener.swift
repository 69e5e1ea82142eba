import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: a thread records every
/// notification, in order, with the monotonic time it arrived. Closed (and the socket file
/// removed) by ``close()`` or on deinit.
package final class NotifyListener: Sendable {
  package struct Message: Sendable {
    /// ``monotonic()`` when it arrived.
    package var at: Double
    package var text: String
  }

  package let path: String
  private let fd: Int32
  private let inbox = Inbox()

  private final class Inbox: Sendable {
    let messages = Mutex<[Message]>([])
    let stopped = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
    let closed = Atomic<Bool>(false)
  }

  package init(path: String) throws {
    self.path = path
    let fd = try UnixSocketAddress.boundSocket(type: Int32(SOCK_DGRAM.rawValue), path: path)
    self.fd = fd
    var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    Thread { [fd, inbox] in
      var buffer = [UInt8](repeating: 0, count: 65536)
      while !inbox.stopped.load(ordering: .relaxed) {
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { continue }
        let message = Message(at: monotonic(), text: String(decoding: buffer[0..<count], as: UTF8.self))
        inbox.messages.withLock { $0.append(message) }
      }
      inbox.finished.store(true, ordering: .relaxed)
    }.start()
  }

  /// Every notification so far, with its arrival time.
  package var messages: [Message] { inbox.messages.withLock { $0 } }

  /// Every notification so far.
  package var all: [String] { messages.map(\.text) }

  /// The `KEY=value` lines of every notification so far, in order.
  package var assignments: [String] { all.flatMap { $0.split(separator: "\n").map(String.init) } }

  /// True when `message` has the line `line` (or a line with that prefix when `line` ends in `=`).
  package static func has(_ message: String, _ line: String) -> Bool {
    message.split(separator: "\n").contains { line.hasSuffix("=") ? $0.hasPrefix(line) : $0 == line }
  }

  /// The notification number `index` (0: the first), waiting (bounded) for it.
  package func message(_ index: Int, within seconds: Double = 5) throws -> String {
    var found: String?
    do {
      try poll("notification #\(index) on \(path)", within: seconds, every: 0.005) {
        let list = messages
        if index < list.count { found = list[index].text }
        return found != nil
      }
    } catch {
      throw SetupError("no notification #\(index); received: \(all)")
    }
    return found!
  }

  /// The first notification at index `from` or later that has the line `line` (see
  /// ``has(_:_:)``); waits (bounded) for it, or until `giveUp` holds (e.g. the daemon
  /// exited). Its index, text and arrival time.
  @discardableResult
  package func wait(
    for line: String, from: Int = 0, within seconds: Double = 20, giveUp: () -> Bool = { false }
  ) throws -> (index: Int, message: String, at: Double) {
    try first(line, from: from, within: seconds, giveUp: giveUp) { text in
      Self.has(text, line) ? text : nil
    }
  }

  /// The first `STATUS=` at index `from` or later whose text satisfies `condition`.
  @discardableResult
  package func waitForStatus(
    from: Int = 0, within seconds: Double = 20, _ what: String, _ condition: (String) -> Bool
  ) throws -> (index: Int, status: String) {
    let found = try first("STATUS= \(what)", from: from, within: seconds) { text in
      text.split(separator: "\n").lazy.filter { $0.hasPrefix("STATUS=") }
        .map { String($0.dropFirst("STATUS=".count)) }.first(where: condition)
    }
    return (found.index, found.message)
  }

  /// The most recent `STATUS=` text.
  package var lastStatus: String? {
    for m in all.reversed() {
      for l in m.split(separator: "\n") where l.hasPrefix("STATUS=") {
        return String(l.dropFirst("STATUS=".count))
      }
    }
    return nil
  }

  /// The first message at `from` or later for which `pick` returns something.
  private func first(
    _ what: String, from: Int, within seconds: Double, giveUp: () -> Bool = { false },
    _ pick: (String) -> String?
  ) throws -> (index: Int, message: String, at: Double) {
    var found: (Int, String, Double)?
    do {
      try poll("\(what) on NOTIFY_SOCKET", within: seconds, every: 0.005) {
        let list = messages
        if from < list.count {
          for i in from..<list.count {
            if let picked = pick(list[i].text) {
              found = (i, picked, list[i].at)
              return true
            }
          }
        }
        if giveUp() { throw SetupError("gave up") }
        return false
      }
    } catch {
      throw SetupError("no notification with \(what) after #\(from); received: \(all)")
    }
    return found!
  }

  /// Stops the receiving thread, closes the socket and removes its file (once).
  package func close() {
    guard !inbox.closed.exchange(true, ordering: .relaxed) else { return }
    inbox.stopped.store(true, ordering: .relaxed)
    while !inbox.finished.load(ordering: .relaxed) { usleep(10_000) }
    Glibc.close(fd)
    unlink(path)
  }

  deinit { close() }
}

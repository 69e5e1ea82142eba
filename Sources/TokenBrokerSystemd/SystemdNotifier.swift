import CSystemdProtocol
import Glibc

/// Talks to the service manager over `$NOTIFY_SOCKET` (`sd_notify(3)`).
///
/// Every method is a no-op returning ``Outcome/notConfigured`` when the process was not started by
/// systemd with `Type=notify` (no `NOTIFY_SOCKET`), so callers need not check ``isEnabled`` first.
/// The environment is left untouched (`unset_environment = 0`): children started later would
/// inherit `NOTIFY_SOCKET`, which is why the daemon never forks helpers with its environment.
package struct SystemdNotifier: Sendable {
  /// What became of one notification.
  package enum Outcome: Sendable, Equatable {
    /// The datagram was handed to the service manager's socket.
    case sent
    /// `NOTIFY_SOCKET` is not set: not running under systemd `Type=notify`.
    case notConfigured
    /// Sending failed with this errno (e.g. `ENOENT` when the socket is gone).
    case failed(errno: Int32)
  }

  package init() {}

  /// True when `$NOTIFY_SOCKET` is set and non-empty.
  package var isEnabled: Bool {
    guard let value = getenv("NOTIFY_SOCKET") else { return false }
    return value.pointee != 0
  }

  /// `READY=1`: start-up finished (or a reload completed).
  @discardableResult
  package func ready() -> Outcome {
    notify("READY=1")
  }

  /// `STATUS=<line>`: a one-line human readable status; line breaks become spaces.
  @discardableResult
  package func status(_ line: String) -> Outcome {
    notify("STATUS=" + Self.singleLine(line))
  }

  /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC, as systemd ≥ 253 requires for
  /// `Type=notify-reload`; harmless for `Type=notify`). Follow with ``ready()`` when done.
  @discardableResult
  package func reloading() -> Outcome {
    notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
  }

  /// `STOPPING=1`: a graceful stop has begun.
  @discardableResult
  package func stopping() -> Outcome {
    notify("STOPPING=1")
  }

  /// `WATCHDOG=1`: keep-alive ping; send at half of ``watchdogInterval()``.
  @discardableResult
  package func watchdog() -> Outcome {
    notify("WATCHDOG=1")
  }

  /// `EXTEND_TIMEOUT_USEC=`: ask for more time for the current start-up, reload or stop.
  @discardableResult
  package func extendTimeout(by duration: Duration) -> Outcome {
    notify("EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration))")
  }

  /// Sends `raw` as it is (newline separated `KEY=VALUE` assignments).
  @discardableResult
  package func notify(_ raw: String) -> Outcome {
    let result = raw.withCString { tb_notify($0, nil, 0) }
    if result > 0 { return .sent }
    if result == 0 { return .notConfigured }
    return .failed(errno: -result)
  }

  /// The service's `WatchdogSec=` as systemd passed it (`$WATCHDOG_USEC`, honouring
  /// `$WATCHDOG_PID`), or nil when the watchdog is off. Ping at half of this.
  package func watchdogInterval() -> Duration? {
    guard let raw = getenv("WATCHDOG_USEC"), let usec = UInt64(String(cString: raw)), usec > 0 else {
      return nil
    }
    if let pid = getenv("WATCHDOG_PID"), Int32(String(cString: pid)) != getpid() { return nil }
    return .microseconds(Int64(clamping: usec))
  }

  /// `text` on one line: line breaks (and the blanks around them) become a single space.
  package static func singleLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline)
      .map { trimBlanks($0) }
      .filter { !$0.isEmpty }
      .joined(separator: " ")
  }

  private static func trimBlanks(_ text: Substring) -> Substring {
    let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = text.firstIndex(where: { !isBlank($0) }),
      let last = text.lastIndex(where: { !isBlank($0) })
    else { return "" }
    return text[first...last]
  }

  /// CLOCK_MONOTONIC in microseconds, the clock `MONOTONIC_USEC=` is defined on.
  package static func monotonicMicroseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
  }

  static func microseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
  }
}

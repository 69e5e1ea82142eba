import CSystemdProtocol
import Glibc

/// Why an inherited descriptor cannot be used as the broker's listening socket.
package enum SocketActivationError: Error, Equatable, CustomStringConvertible {
  /// `$LISTEN_FDS` / `$LISTEN_PID` are malformed (a negative errno, as `sd_listen_fds` gives).
  case invalidEnvironment(errno: Int32)
  /// The descriptor systemd passed is not a listening `SOCK_STREAM` socket of `AF_UNIX`.
  case notAListeningUnixStreamSocket(fd: Int32)
  /// The socket unit passed more descriptors than the broker listens on.
  case unexpectedCount(Int)

  package var description: String {
    switch self {
    case .invalidEnvironment(let errno):
      return "socket activation: LISTEN_FDS/LISTEN_PID are invalid (\(String(cString: strerror(errno))))"
    case .notAListeningUnixStreamSocket(let fd):
      return
        "socket activation: inherited fd \(fd) is not a listening Unix stream socket "
        + "(the .socket unit needs ListenStream=/path and Accept=no)"
    case .unexpectedCount(let count):
      return "socket activation: expected exactly one listening socket, systemd passed \(count)"
    }
  }
}

/// Socket activation (`sd_listen_fds(3)`: `$LISTEN_PID`, `$LISTEN_FDS`, `$LISTEN_FDNAMES`).
package enum SocketActivation {
  /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
  package static let firstFileDescriptor: Int32 = 3

  /// The descriptors passed by systemd: `[3, 4, ...]`, or `[]` when the process was not socket
  /// activated (no `$LISTEN_FDS`, or `$LISTEN_PID` names another process) or the variables are
  /// malformed. `FD_CLOEXEC` is set on each; the environment is left as it is.
  package static func listenFileDescriptors() -> [Int32] {
    (try? checkedListenFileDescriptors()) ?? []
  }

  /// Like ``listenFileDescriptors()`` but reports malformed `$LISTEN_FDS` instead of ignoring it.
  package static func checkedListenFileDescriptors() throws(SocketActivationError) -> [Int32] {
    let count = tb_listen_fds()
    if count < 0 { throw .invalidEnvironment(errno: -count) }
    return (0..<count).map { firstFileDescriptor + $0 }
  }

  /// True when `fd` is an `AF_UNIX` `SOCK_STREAM` socket in the listening state.
  package static func isListeningUnixStreamSocket(_ fd: Int32) -> Bool {
    tb_is_listening_unix_stream(fd) > 0
  }

  /// Throws ``SocketActivationError/notAListeningUnixStreamSocket(fd:)`` unless `fd` is a
  /// listening Unix stream socket.
  package static func validateListeningUnixStreamSocket(_ fd: Int32) throws(SocketActivationError) {
    guard isListeningUnixStreamSocket(fd) else { throw .notAListeningUnixStreamSocket(fd: fd) }
  }

  /// The passed descriptors with their names (`FileDescriptorName=` of a socket unit, which
  /// defaults to the unit's name; `FDNAME=` of one the service kept in its store), `[]` as
  /// ``listenFileDescriptors()``.
  package static func namedFileDescriptors() -> [(fd: Int32, name: String)] {
    let count = tb_listen_fds()
    guard count > 0 else { return [] }
    // `$LISTEN_FDNAMES`: one name per descriptor, colon-separated; without it, "unknown".
    var names = [String](repeating: "unknown", count: Int(count))
    if let raw = getenv("LISTEN_FDNAMES") {
      let given = String(cString: raw).split(separator: ":", omittingEmptySubsequences: false).map(
        String.init)
      if given.count == names.count { names = given }
    }
    return (0..<count).map { i in (firstFileDescriptor + i, names[Int(i)]) }
  }

  /// The broker's inherited listening socket: nil when not socket activated, the descriptor when
  /// exactly one valid one was passed; throws when there are several or it is not usable. What
  /// the service kept in systemd's file-descriptor store (the token handover) is not a socket
  /// and does not count.
  package static func inheritedListeningSocket() throws(SocketActivationError) -> Int32? {
    _ = try checkedListenFileDescriptors()
    let fds = namedFileDescriptors().filter { $0.name != FileDescriptorStore.handoverName }.map(\.fd)
    guard let fd = fds.first else { return nil }
    guard fds.count == 1 else { throw .unexpectedCount(fds.count) }
    try validateListeningUnixStreamSocket(fd)
    return fd
  }
}

import CSystemdProtocol
import Glibc

/// systemd's file-descriptor store (`FDSTORE=1`, `FileDescriptorStoreMax=`): what one run of
/// the service keeps in the service manager for the next, across `systemctl restart` and a
/// package upgrade. The bytes travel in a sealed memfd: in memory only, never on disk, and
/// nobody can change them once sealed (README "Restarts and upgrades").
package enum FileDescriptorStore {
  /// `FDNAME=` of the token handover.
  package static let handoverName = "tokens"

  package struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
  }

  // linux/memfd.h and linux/fcntl.h
  static let memfdCloexec: UInt32 = 0x1
  static let memfdAllowSealing: UInt32 = 0x2
  static let addSeals: Int32 = 1024 + 9
  static let getSeals: Int32 = 1024 + 10
  /// F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
  static let allSeals: Int32 = 0x1 | 0x2 | 0x4 | 0x8

  /// Puts `bytes` into a sealed memfd and hands it to systemd as `name`, replacing one kept
  /// under that name. `.notConfigured` when not running under systemd.
  package static func keep(_ bytes: [UInt8], name: String) throws(Failure) -> SystemdNotifier.Outcome {
    guard SystemdNotifier().isEnabled else { return .notConfigured }
    let fd = tb_memfd_create("token-broker-\(name)", memfdCloexec | memfdAllowSealing)
    guard fd >= 0 else { throw failure("memfd_create") }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw failure("write to the memfd") }
      written += n
    }
    guard fcntl(fd, addSeals, allSeals) == 0 else { throw failure("seal the memfd") }
    forget(name: name)
    var fds: [Int32] = [fd]
    let result = "FDSTORE=1\nFDNAME=\(name)".withCString { tb_notify($0, &fds, 1) }
    if result > 0 { return .sent }
    if result == 0 { return .notConfigured }
    return .failed(errno: -result)
  }

  /// The bytes kept under `name` by the previous run, if systemd passed them in: the memfd is
  /// read, closed and dropped from the store (what it held must not come back after a later
  /// crash). nil when there is none; throws when what was passed is not a sealed memfd.
  package static func take(name: String, maxBytes: Int) throws(Failure) -> [UInt8]? {
    guard let fd = SocketActivation.namedFileDescriptors().first(where: { $0.name == name })?.fd else {
      return nil
    }
    defer {
      close(fd)
      forget(name: name)
    }
    guard fcntl(fd, getSeals) & allSeals == allSeals else {
      throw Failure(description: "the descriptor systemd kept as \(name) is not a sealed memfd; ignored")
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw failure("fstat the kept \(name)") }
    guard Int(st.st_size) <= maxBytes else {
      throw Failure(description: "the \(name) systemd kept is larger than \(maxBytes) bytes; ignored")
    }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var got = 0
    while got < bytes.count {
      let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(got)) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw failure("read the kept \(name)") }
      got += n
    }
    return bytes
  }

  /// `FDSTOREREMOVE=1`: systemd closes what it keeps under `name`.
  static func forget(name: String) {
    _ = "FDSTOREREMOVE=1\nFDNAME=\(name)".withCString { tb_notify($0, nil, 0) }
  }

  private static func failure(_ what: String) -> Failure {
    Failure(description: "cannot \(what): \(String(cString: strerror(errno)))")
  }
}

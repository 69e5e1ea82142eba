#if canImport(Glibc)
  import Glibc
#endif

/// The kernel's word on who is at the other end of a Unix socket.
package struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
  package var pid: Int32
  package var uid: UInt32
  package var gid: UInt32
  /// Supplementary groups (SO_PEERGROUPS), primary gid not necessarily included.
  package var groups: [UInt32]

  package init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
    self.pid = pid
    self.uid = uid
    self.gid = gid
    self.groups = groups
  }

  package var description: String { "uid=\(uid) gid=\(gid) pid=\(pid)" }

  /// `struct ucred` (needs _GNU_SOURCE in C, so mirrored here).
  private struct UCred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
  }

  /// Reads SO_PEERCRED and SO_PEERGROUPS of a connected Unix socket; nil when
  /// the descriptor is not one (e.g. TCP in the test issuer).
  package static func read(fd: Int32) -> PeerCredentials? {
    var cred = UCred()
    var len = socklen_t(MemoryLayout<UCred>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, len == MemoryLayout<UCred>.size else {
      return nil
    }
    return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: readGroups(fd: fd))
  }

  private static func readGroups(fd: Int32) -> [UInt32] {
    var groups = [UInt32](repeating: 0, count: 64)
    while true {
      var len = socklen_t(groups.count * MemoryLayout<UInt32>.size)
      let rc = groups.withUnsafeMutableBytes {
        getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, $0.baseAddress, &len)
      }
      if rc == 0 { return Array(groups.prefix(Int(len) / MemoryLayout<UInt32>.size)) }
      // ERANGE: the kernel wrote the needed length into len.
      guard errno == ERANGE, Int(len) > groups.count * 4, groups.count < 65536 else { return [] }
      groups = [UInt32](repeating: 0, count: Int(len) / 4 + 1)
    }
  }
}

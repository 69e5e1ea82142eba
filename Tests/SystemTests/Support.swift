import Foundation
import Glibc
import Testing
import TokenBrokerTestSupport

/// Every suite of this target is nested in this one: one test at a time (each starts daemons,
/// journald and fake upstreams), on threads of their own (they block), and a journald the
/// tests started is stopped at the end.
@Suite(.serialized, JournaldScope(), OwnThreadsScope()) struct SystemSuite {}

/// systemd's own socket activator, for the tests that activate the daemon by hand.
let socketActivatePath = "/usr/bin/systemd-socket-activate"

/// A random suffix for names that must be unique in the (persistent) journal.
func uniqueSuffix() -> String {
  String(UInt64.random(in: 0...UInt64.max), radix: 16)
}

/// `stat(2)` of a path, nil when it does not exist.
func fileStatus(_ path: String) -> stat? {
  var info = stat()
  return lstat(path, &info) == 0 ? info : nil
}

/// A group other than root's that exists here (for `socket_group`), with its gid.
func someGroup() -> (name: String, gid: gid_t)? {
  for name in ["nogroup", "daemon", "nobody", "users", "adm"] {
    if let g = getgrnam(name) { return (name, g.pointee.gr_gid) }
  }
  return nil
}

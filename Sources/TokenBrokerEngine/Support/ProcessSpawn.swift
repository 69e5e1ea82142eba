import CLibcExtras

#if canImport(Glibc)
  import Glibc
#endif

/// `posix_spawn` with default signal dispositions and an empty signal mask, whatever this
/// process set: the daemon's fleet helper and the test kit's children start the same way.
package enum ProcessSpawn {
  /// `posix_spawn` failed with this errno.
  package struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    package var errno: Int32
    package var description: String { String(cString: strerror(errno)) }
  }

  /// Starts `executable` with `arguments` and exactly `environment` (`NAME=value` entries);
  /// `descriptors` sets up the child's descriptors below `closingFrom`, and every descriptor
  /// from `closingFrom` up is closed in the child: nothing else of this process (a client's
  /// connection, a listening socket) is inherited, whatever its close-on-exec flag (SwiftNIO
  /// accepts connections without one). Returns its pid.
  package static func start(
    _ executable: String, _ arguments: [String], environment: [String], closingFrom: Int32 = 3,
    descriptors: (inout posix_spawn_file_actions_t) -> Void
  ) throws(Failure) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    descriptors(&actions)
    let closed = tb_posix_spawn_file_actions_addclosefrom(&actions, closingFrom)
    guard closed == 0 else { throw Failure(errno: closed) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var all = sigset_t()
    sigfillset(&all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer {
      for p in argv { free(p) }
      for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw Failure(errno: rc) }
    return pid
  }
}

import Foundation
import Glibc

/// `posix_spawn` for tests and tools: stdin from `/dev/null`, stdout and stderr into files,
/// and no other descriptor of this process (glibc's closefrom action). Not Foundation's
/// `Process`: its exit monitor learns of an exit when the child's end of a socket pair
/// closes, so a long-lived child that inherits another's socket (spawns from several threads
/// race) hides that exit, and the monitor then waits, blocking, for whichever child it
/// heard of: a test run hung that way, a `tokenctl` left a zombie while the monitor waited
/// for the `--dev` daemon.
package enum Spawn {
  package struct Failure: Error, CustomStringConvertible {
    package var description: String
  }

  /// Starts `executable` with exactly `environment`; returns its pid.
  package static func start(
    _ executable: String, _ arguments: [String], environment: [String: String], stdout: String,
    stderr: String
  ) throws(Failure) -> pid_t {
    guard let closeFrom = addCloseFrom else {
      throw Failure(description: "this glibc has no posix_spawn_file_actions_addclosefrom_np (2.34)")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = closeFrom(&actions, 3)
    // Default signal dispositions and an empty mask, whatever this process set.
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
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for p in argv { free(p) }
      for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard rc == 0 else {
      throw Failure(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
    }
    return pid
  }

  /// A `waitpid` status as an exit status, or 128 + the signal that ended the process.
  package static func exitStatus(_ status: Int32) -> Int32 {
    // WIFEXITED / WEXITSTATUS / WTERMSIG spelled out: the macros do not import.
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  /// Blocks until `pid` (a child of this process) exits; its `waitpid` status.
  package static func waitBlocking(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
  }

  /// glibc's `posix_spawn_file_actions_addclosefrom_np`, which the Glibc module does not declare.
  private typealias AddCloseFrom =
    @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
  nonisolated(unsafe) private static let addCloseFrom: AddCloseFrom? = {
    guard
      let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
    else { return nil }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
  }()
}

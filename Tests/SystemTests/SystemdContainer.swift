import Foundation
import Glibc
import Synchronization
import TokenBrokerTestSupport

/// A real systemd as PID 1 in fresh namespaces (pid, mount, uts, ipc, net, cgroup), booted from
/// this machine's `/lib/systemd/systemd` with the project's units installed the way
/// `make install` does (see README "Install and run under systemd"); the host's file system
/// is not changed (FIELD-NOTES "A real systemd as PID 1, for tests of the shipped units").
///
/// Layout inside: `/etc`, `/var` and `/usr` are overlays over the host's with a tmpfs upper
/// layer, so `systemd-sysusers`, the installed files and the state stay inside; `/run`, `/tmp`,
/// `/var/tmp` and a minimal `/dev` are tmpfs; `/lib/systemd/system` and `/etc/systemd/system`
/// are covered by empty tmpfs and hold only the shipped units, journald's units, the poweroff
/// chain and stub boot targets (so no unit of the host is loaded); a fresh cgroup2 (the root of
/// the new cgroup namespace: a child of the host's cgroup2 made for this container) is
/// `/sys/fs/cgroup`. The binaries are the built ones, bind-mounted read-only on
/// `/usr/bin/token-brokerd` and `/usr/bin/tokenctl`.
///
/// Driven with `nsenter -t PID1 -a` (systemctl refuses a manager in another pid namespace);
/// a path inside is reachable from here as `/proc/PID1/root/PATH`. ``shutdown()`` (also on
/// deinit) powers it off, kills what is left through `cgroup.kill` and removes the cgroups.
final class SystemdContainer: @unchecked Sendable {
  static let systemdPath = "/lib/systemd/systemd"
  static let tools = ["/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/setsid", "/usr/bin/systemctl"]
  /// Upper bound for booting, powering off and each command (not a timing assertion).
  static let patience: Double = 30

  /// The pid of the container's systemd in this (the host's) pid namespace.
  let pid1: pid_t
  private let launcher: ChildProcess
  private let staging: TempDirectory
  private let cgroup: String
  private let finished = Mutex(false)

  /// Root, with a systemd to boot and the util-linux tools that drive it: the condition of
  /// `.enabled(if:)`. A missing cgroup2 is not a reason to skip: ``boot(repository:binaries:)``
  /// fails with what is missing.
  static var isPossible: Bool {
    geteuid() == 0 && access(systemdPath, X_OK) == 0 && tools.allSatisfy { access($0, X_OK) == 0 }
  }

  /// Where cgroup2 is mounted on the host: `/sys/fs/cgroup` (unified) or
  /// `/sys/fs/cgroup/unified` (hybrid, as on this Debian 12 machine without systemd as PID 1).
  static func cgroup2Root() throws -> String {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where access(root + "/cgroup.procs", F_OK) == 0 {
      if access(root + "/cgroup.controllers", F_OK) == 0 { return root }
    }
    throw SetupError("no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified: systemd cannot boot")
  }

  /// Boots the container and waits (bounded) until its systemd says `running`.
  /// `repository` holds `systemd/`; `binaries` the built `token-brokerd` and `tokenctl`.
  /// With `makeInstall` false nothing of token-broker is installed (the package install test
  /// installs the .deb itself).
  static func boot(repository: String, binaries: String, makeInstall: Bool = true) throws -> SystemdContainer
  {
    let staging = try TempDirectory("tbst")
    try FileManager.default.createDirectory(
      atPath: staging.file("layers"), withIntermediateDirectories: false)
    try staging.write("init", initScript, mode: 0o700)
    let cgroup = try cgroup2Root() + "/" + (staging.path as NSString).lastPathComponent
    guard mkdir(cgroup, 0o755) == 0 else { throw SetupError.errno("mkdir \(cgroup)") }
    // The shell moves itself into the new cgroup, then becomes unshare (`setsid`: no
    // controlling terminal for systemd); unshare's child is the container's PID 1.
    let launcher: ChildProcess
    do {
      launcher = try ChildProcess(
        "/bin/sh",
        [
          "-c",
          "echo $$ >\"$1/cgroup.procs\" && exec setsid -w unshare --pid --fork --kill-child --mount "
            + "--mount-proc --propagation private --uts --ipc --net --cgroup sh \"$2/init\" \"$2\" \"$3\" \"$4\" \"$5\"",
          "sh", cgroup, staging.path, repository, binaries, makeInstall ? "make-install" : "none",
        ],
        outputIn: staging, name: "container")
      try launcher.start()
    } catch {
      rmdir(cgroup)
      throw error
    }
    let container = SystemdContainer(launcher: launcher, staging: staging, cgroup: cgroup)
    do {
      try container.waitUntilRunning()
    } catch {
      container.shutdown()
      throw error
    }
    return container
  }

  private init(launcher: ChildProcess, staging: TempDirectory, cgroup: String) {
    self.launcher = launcher
    self.staging = staging
    self.cgroup = cgroup
    var pid: pid_t = 0
    // unshare forks PID 1 right away; read it from /proc (bounded: unshare may have failed).
    try? poll("unshare to fork PID 1", within: Self.patience) {
      let children = "/proc/\(launcher.pid)/task/\(launcher.pid)/children"
      let text = (try? String(contentsOfFile: children, encoding: .utf8)) ?? ""
      pid = text.split(separator: " ").first.flatMap { pid_t($0) } ?? 0
      return pid != 0 || !launcher.isRunning
    }
    pid1 = pid
  }

  /// What the container's set-up printed (its init script's stdout and stderr).
  var bootOutput: String { launcher.stdout + launcher.stderr }

  private func waitUntilRunning() throws {
    guard pid1 != 0 else { throw SetupError("the container did not start: \(bootOutput)") }
    var state = ""
    do {
      try poll("systemd in the container to finish booting", within: Self.patience) {
        guard launcher.isRunning else { throw SetupError("the container exited during boot") }
        // The init script is PID 1 until it execs systemd.
        guard readLink("/proc/\(pid1)/exe").hasSuffix("/systemd") else { return false }
        state = (try? run(["systemctl", "is-system-running"]).stdout)?.trimmed ?? ""
        return state == "running" || state == "degraded"
      }
    } catch {
      throw SetupError("\(error); is-system-running: \(state); output: \(bootOutput)")
    }
    if state == "degraded" {
      let failed = (try? run(["systemctl", "--failed", "--no-legend"]).stdout) ?? ""
      throw SetupError("the container booted degraded: \(failed)")
    }
  }

  /// `PATH` inside, as a path on the host.
  func hostPath(_ path: String) -> String { "/proc/\(pid1)/root" + path }

  /// Runs `command` inside (every namespace, root and working directory of PID 1) to its end.
  func run(_ command: [String]) throws -> ProcessOutput {
    try runToEnd(
      "/usr/bin/nsenter", ["-t", String(pid1), "-a"] + command,
      environment: ["SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0"])
  }

  /// Runs `command` inside; its stdout, or an error with its stderr when it fails.
  @discardableResult
  func check(_ command: [String]) throws -> String {
    let result = try run(command)
    guard result.status == 0 else {
      throw SetupError(
        "\(command.joined(separator: " ")) (in the container): exit \(result.status): \(result.stderr)")
    }
    return result.stdout
  }

  @discardableResult
  func systemctl(_ arguments: String...) throws -> String {
    try check(["systemctl", "--no-pager"] + arguments)
  }

  /// `systemctl show -P PROPERTY UNIT`.
  func property(_ unit: String, _ name: String) throws -> String {
    try check(["systemctl", "show", "-P", name, unit]).trimmed
  }

  /// Installs `text` as `path` inside with `install -D -m MODE -o OWNER -g GROUP` (through a
  /// file on the container's /run, written from here).
  func install(_ text: String, at path: String, mode: String, owner: String = "root", group: String = "root")
    throws
  {
    let incoming = "/run/tbsd-incoming-\(uniqueSuffix())"
    guard FileManager.default.createFile(atPath: hostPath(incoming), contents: Data(text.utf8)) else {
      throw SetupError("cannot write \(hostPath(incoming))")
    }
    defer { unlink(hostPath(incoming)) }
    try check(["install", "-D", "-m", mode, "-o", owner, "-g", group, incoming, path])
  }

  /// `journalctl -o json ARGUMENTS` inside, parsed: each entry's fields (first value each).
  func journal(_ arguments: [String]) throws -> [[String: String]] {
    let output = try check(["journalctl", "--no-pager", "--quiet", "--all", "--output=json"] + arguments)
    return try output.split(separator: "\n").map { line in
      guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw SetupError("journalctl printed a line that is not a JSON object: \(line)")
      }
      return object.compactMapValues { value in
        if let text = value as? String { return text }
        if let bytes = value as? [Int] {
          return String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
        }
        if let many = value as? [Any] { return many.first as? String }
        return nil
      }
    }
  }

  /// A task executor whose one thread lives in the container's network namespace: a
  /// server started under `withTaskExecutorPreference` on it (e.g. ``FakeUpstream/start``,
  /// whose socket is created on the calling thread) listens inside, on the container's
  /// loopback. Stop it when done.
  func makeNetworkNamespaceExecutor() throws -> ThreadExecutor {
    try ThreadExecutor.inNetworkNamespace("/proc/\(pid1)/ns/net")
  }

  /// Powers the container off (`poweroff.target`, replacing every job), waits (bounded) for
  /// it to exit, kills whatever is left in its cgroup tree and removes the cgroups. Idempotent.
  func shutdown() {
    let done = finished.withLock { done in
      defer { done = true }
      return done
    }
    guard !done else { return }
    if launcher.isRunning && pid1 != 0 {
      _ = try? run(["systemctl", "start", "--no-block", "--job-mode=replace-irreversibly", "poweroff.target"])
      try? poll("the container to power off", within: 10) { !launcher.isRunning }
    }
    if let kill = fopen(cgroup + "/cgroup.kill", "w") {
      fputs("1", kill)
      fclose(kill)
    }
    // --kill-child: PID 1 and with it the whole pid namespace die with unshare.
    launcher.terminateForcibly()
    try? poll("the container's cgroups to empty and go", within: 10) {
      for dir in cgroupDirectories() { rmdir(dir) }
      return access(cgroup, F_OK) != 0
    }
  }

  /// The container's cgroup and every cgroup below it, deepest first.
  private func cgroupDirectories() -> [String] {
    let below = (FileManager.default.subpaths(atPath: cgroup) ?? []).filter { sub in
      var isDirectory: ObjCBool = false
      return FileManager.default.fileExists(atPath: cgroup + "/" + sub, isDirectory: &isDirectory)
        && isDirectory.boolValue
    }
    return below.sorted { $0.count > $1.count }.map { cgroup + "/" + $0 } + [cgroup]
  }

  deinit { shutdown() }

  /// PID 1 until it execs systemd: arguments STAGING REPOSITORY BINARIES MODE (make-install or
  /// none: what `make install` installs, or nothing). Every mount is in the
  /// new mount namespace (`mount -n`: no mtab); nothing here writes to the host's file system
  /// but the overlays' upper layers, which are a tmpfs of this namespace.
  static let initScript = #"""
    set -eu
    S=$1 REPO=$2 BIN=$3 MODE=$4
    m() { mount -n "$@"; }
    m -t tmpfs -o mode=0700 tbsd-layers "$S/layers"
    for d in etc var usr; do
      mkdir -p "$S/layers/$d/upper" "$S/layers/$d/work"
      m -t overlay -o "lowerdir=/$d,upperdir=$S/layers/$d/upper,workdir=$S/layers/$d/work" overlay "/$d"
    done
    m -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
    m -t tmpfs -o mode=0755,nosuid tmpfs /dev
    mknod -m 0666 /dev/null c 1 3
    mknod -m 0666 /dev/zero c 1 5
    mknod -m 0666 /dev/full c 1 7
    mknod -m 0666 /dev/random c 1 8
    mknod -m 0666 /dev/urandom c 1 9
    mknod -m 0666 /dev/tty c 5 0
    mkdir /dev/pts /dev/shm /dev/mqueue
    m -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
    ln -s pts/ptmx /dev/ptmx
    ln -s /proc/self/fd /dev/fd
    m -t mqueue mqueue /dev/mqueue
    m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
    m -o remount,bind,ro /sys
    m -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
    m --bind /proc/sys /proc/sys
    m -o remount,bind,ro /proc/sys

    # Only these units exist: journald's and the poweroff chain (copied from the host before
    # the unit directories are covered), stub boot targets, then what `make install` installs.
    mkdir "$S/layers/stock"
    for u in systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
      poweroff.target systemd-poweroff.service shutdown.target umount.target final.target; do
      cp /lib/systemd/system/$u "$S/layers/stock/"
    done
    m -t tmpfs -o mode=0755 tmpfs /lib/systemd/system
    m -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
    cp "$S"/layers/stock/* /lib/systemd/system/
    for t in sysinit basic sockets local-fs network network-online multi-user; do
      printf '[Unit]\nDescription=%s (stub of the test container)\n' $t >/lib/systemd/system/$t.target
    done
    printf '[Unit]\nDescription=token-broker test container\nWants=systemd-journald.service\n' \
      >/lib/systemd/system/tbsd.target

    if [ "$MODE" = make-install ]; then
      # make install (PREFIX=/usr, UNITDIR=/lib/systemd/system), with the built binaries
      for b in token-brokerd tokenctl; do
        install -m 0755 /dev/null /usr/bin/$b
        m --bind -o ro "$BIN/$b" /usr/bin/$b
      done
      install -D -m 0644 "$REPO/systemd/token-broker.service" /lib/systemd/system/token-broker.service
      install -D -m 0644 "$REPO/systemd/token-broker.socket" /lib/systemd/system/token-broker.socket
      install -D -m 0644 "$REPO/systemd/token-broker.sysusers" /usr/lib/sysusers.d/token-broker.conf
      install -D -m 0644 "$REPO/systemd/token-broker.tmpfiles" /usr/lib/tmpfiles.d/token-broker.conf
      # then README "Install and run under systemd", from source
      systemd-sysusers token-broker.conf
      systemd-tmpfiles --create token-broker.conf
    else
      # A policy-rc.d of the host (a build machine's or container image's "exit 101": start
      # nothing from maintainer scripts) is no server's: packages start their units here.
      rm -f /usr/sbin/policy-rc.d
    fi
    ip link set lo up

    # The host's /tmp (which holds $S) goes out of sight last.
    m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    # Without this LoadCredential= fails (Permission denied: /run/credentials/UNIT).
    mount --make-rshared /
    exec env -i container=token-broker-test \
      SYSTEMD_UNIT_PATH=/etc/systemd/system:/run/systemd/system:/lib/systemd/system \
      SYSTEMD_GENERATOR_PATH=/run/tbsd-none SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/tbsd-none \
      /lib/systemd/systemd --unit=tbsd.target
    """#
}

extension String {
  var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// The target of a symbolic link, or "" when it cannot be read.
func readLink(_ path: String) -> String {
  var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
  let count = readlink(path, &buffer, buffer.count - 1)
  guard count > 0 else { return "" }
  return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

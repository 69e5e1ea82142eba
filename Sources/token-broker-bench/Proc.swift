import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// What /proc says about a process: memory, CPU time, wake-ups.
enum Proc {
  /// Bytes of a file, nil when it cannot be read.
  static func fileSize(_ path: String) -> Int? {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : nil
  }

  /// `VmRSS` of /proc/PID/status, KiB.
  static func rssKiB(_ pid: pid_t) -> Int? {
    statusField(pid, "VmRSS")
  }

  /// `VmHWM` (peak RSS), KiB.
  static func peakRSSKiB(_ pid: pid_t) -> Int? {
    statusField(pid, "VmHWM")
  }

  /// `RssAnon` (the process's own memory) and `RssFile` (mapped binaries and libraries,
  /// shared with every other process that maps them), KiB.
  static func rssSplit(_ pid: pid_t) -> (anon: Int, file: Int)? {
    guard let anon = statusField(pid, "RssAnon"), let file = statusField(pid, "RssFile") else { return nil }
    return (anon, file)
  }

  static func threads(_ pid: pid_t) -> Int? {
    statusField(pid, "Threads")
  }

  private static func statusField(_ pid: pid_t, _ key: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
      let digits = line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
      return digits.flatMap { Int($0) }
    }
    return nil
  }

  /// utime + stime of /proc/PID/stat, in clock ticks (all threads).
  static func cpuTicks(_ pid: pid_t) -> Int? {
    cpuTicks(statFile: "/proc/\(pid)/stat")
  }

  /// utime + stime of a `stat` file of /proc (a process's or one thread's), in clock ticks.
  private static func cpuTicks(statFile: String) -> Int? {
    guard let text = try? String(contentsOfFile: statFile, encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    // Fields after the command: state(3) ... utime(14) stime(15).
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
  }

  /// The sum of `cpuTicks` over `pids` (those that exist).
  static func cpuTicks(_ pids: [pid_t]) -> Int {
    pids.reduce(0) { $0 + (cpuTicks($1) ?? 0) }
  }

  /// utime + stime of every thread of `pids`, in clock ticks, by "PID/TID".
  static func threadTicks(_ pids: [pid_t]) -> [String: Int] {
    var out: [String: Int] = [:]
    for pid in pids {
      guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else {
        continue
      }
      for task in tasks {
        out["\(pid)/\(task)"] = cpuTicks(statFile: "/proc/\(pid)/task/\(task)/stat")
      }
    }
    return out
  }

  /// The CPU time of the busiest thread of `pids` since `before` (`threadTicks`), as a share of
  /// one core over `seconds`: near 1, that thread is what bounds the process's throughput.
  static func busiestThreadShare(of pids: [pid_t], since before: [String: Int], seconds: Double) -> Double {
    let busiest = threadTicks(pids).map { $0.value - (before[$0.key] ?? 0) }.max() ?? 0
    return Double(busiest) / ticksPerSecond / seconds
  }

  static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

  /// Voluntary + involuntary context switches per thread: each one is a thread waking up (or
  /// being preempted), so an idle process that polls shows them.
  static func contextSwitches(_ pid: pid_t) -> [String: Int]? {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else {
      return nil
    }
    var out: [String: Int] = [:]
    for task in tasks {
      guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else {
        continue
      }
      var total = 0
      for line in text.split(separator: "\n")
      where line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
        total +=
          line.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
      }
      out[task] = total
    }
    return out
  }

  /// The 1-minute load average: the machine is shared, so the tables say how busy it was.
  static var loadAverage: String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
      .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
  }

  /// Raises the open-file limit to the hard limit (the fan-out client holds 1,000 sockets).
  static func raiseFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
  }

  /// Path of the running executable.
  static var executable: String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

/// Idle CPU and wake-ups of a process over a window.
struct IdleSample: Sendable {
  var seconds: Double
  var cpuSeconds: Double
  var wakeups: Int

  /// Percent of one core.
  var cpuPercent: Double { seconds > 0 ? 100 * cpuSeconds / seconds : 0 }
  var wakeupsPerSecond: Double { seconds > 0 ? Double(wakeups) / seconds : 0 }

  /// Sleeps `seconds` (the calling thread only) and samples `pid` before and after.
  static func measure(_ pid: pid_t, seconds: Double) throws -> IdleSample {
    guard let cpu0 = Proc.cpuTicks(pid), let cs0 = Proc.contextSwitches(pid) else {
      throw SetupError("cannot read /proc/\(pid)")
    }
    let t0 = monotonic()
    let micros = seconds * 1e6
    var slept = 0.0
    while slept < micros {
      let step = min(1e6, micros - slept)
      usleep(UInt32(step))
      slept += step
    }
    guard let cpu1 = Proc.cpuTicks(pid), let cs1 = Proc.contextSwitches(pid) else {
      throw SetupError("process \(pid) went away during the idle window")
    }
    // Threads alive at the end: what they did since the start (threads that ended during the
    // window are not counted).
    let wakeups = cs1.reduce(0) { $0 + $1.value - (cs0[$1.key] ?? 0) }
    return IdleSample(
      seconds: monotonic() - t0, cpuSeconds: Double(cpu1 - cpu0) / Proc.ticksPerSecond, wakeups: wakeups)
  }
}

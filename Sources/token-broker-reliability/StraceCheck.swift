import Foundation
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Checks, from an `strace -f` log of the daemon, that every state file was written
/// as temp (0600, O_EXCL) → write → fsync(temp) → rename(temp, state) → fsync(dir),
/// in that order on one thread, and never in place.
enum StraceCheck {
  static let syscalls = "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2,close"

  struct Event {
    var tid: Int
    var name: String
    var args: String
    var result: Int
  }

  struct Report {
    /// Complete, correctly ordered write sequences.
    var sequences = 0
    var problems: [String] = []
  }

  /// Events of a `strace -f -o FILE` log, unfinished and resumed halves joined.
  static func events(_ trace: String) -> [Event] {
    var pending: [Int: String] = [:]
    var out: [Event] = []
    for raw in trace.split(separator: "\n") {
      let line = raw.drop(while: { $0 == " " })
      guard let space = line.firstIndex(of: " "), let tid = Int(line[..<space]) else { continue }
      var rest = String(line[line.index(after: space)...]).trimmingCharacters(in: .whitespaces)
      if rest.hasPrefix("<... ") {
        guard let marker = rest.range(of: " resumed>") else { continue }
        rest = (pending.removeValue(forKey: tid) ?? "") + rest[marker.upperBound...]
      } else if rest.hasSuffix("<unfinished ...>") {
        pending[tid] = String(rest.dropLast("<unfinished ...>".count)).trimmingCharacters(in: .whitespaces)
        continue
      }
      // `name(args) = result`, with padding before ` = ` when the call was short.
      guard let open = rest.firstIndex(of: "("), let eq = rest.range(of: " = ", options: .backwards),
        let close = rest[..<eq.lowerBound].lastIndex(of: ")"), open < close
      else { continue }
      let name = String(rest[..<open])
      let args = String(rest[rest.index(after: open)..<close])
      let value = rest[eq.upperBound...].prefix(while: { $0 == "-" || $0.isNumber })
      out.append(Event(tid: tid, name: name, args: args, result: Int(value) ?? -1))
    }
    return out
  }

  /// The double-quoted strings of an argument list.
  static func quoted(_ args: String) -> [String] {
    var out: [String] = []
    var current: String?
    var escaped = false
    for c in args {
      if var s = current {
        if escaped {
          s.append(c)
          escaped = false
          current = s
        } else if c == "\\" {
          escaped = true
        } else if c == "\"" {
          out.append(s)
          current = nil
        } else {
          s.append(c)
          current = s
        }
      } else if c == "\"" {
        current = ""
      }
    }
    return out
  }

  static func firstInt(_ args: String) -> Int? {
    Int(args.prefix(while: { $0 != "," && $0 != ")" }).trimmingCharacters(in: .whitespaces))
  }

  static func verify(trace: String, stateFile: String, directory: String) -> Report {
    struct Sequence {
      var tempFD: Int?
      var wrote = false
      var synced = false
      var renamed = false
      var directoryFD: Int?
    }
    // Each write has a temp name of its own: NAME.state.tmp-XXXXXX (mkstemp).
    let temp = stateFile + ".tmp"
    var report = Report()
    var open: [Int: Sequence] = [:]
    for e in events(trace) {
      let paths = quoted(e.args)
      switch e.name {
      case "openat", "open":
        if let first = paths.first, first.hasPrefix(temp) {
          if let previous = open[e.tid], previous.renamed {
            report.problems.append(
              "thread \(e.tid): renamed \(stateFile) but did not fsync \(directory) before the next write")
          }
          guard e.result >= 0 else { continue }
          if !e.args.contains("O_CREAT") || !e.args.contains("O_EXCL") || !e.args.contains("0600") {
            report.problems.append(
              "thread \(e.tid): temp file opened as \(e.args), not O_CREAT|O_EXCL with mode 0600")
          }
          open[e.tid] = Sequence(tempFD: e.result)
        } else if paths.first == stateFile,
          e.args.contains("O_WRONLY") || e.args.contains("O_RDWR") || e.args.contains("O_TRUNC")
        {
          report.problems.append("thread \(e.tid): \(stateFile) opened for writing in place (\(e.args))")
        } else if paths.first == directory || paths.first == directory + "/", e.args.contains("O_DIRECTORY"),
          var s = open[e.tid], s.renamed, e.result >= 0
        {
          s.directoryFD = e.result
          open[e.tid] = s
        }
      case "write":
        if var s = open[e.tid], let fd = firstInt(e.args), fd == s.tempFD, e.result > 0, !s.renamed {
          if s.synced { report.problems.append("thread \(e.tid): wrote to the temp file after fsync") }
          s.wrote = true
          open[e.tid] = s
        }
      case "fsync", "fdatasync":
        guard var s = open[e.tid], let fd = firstInt(e.args) else { continue }
        if fd == s.tempFD, !s.renamed {
          if !s.wrote { report.problems.append("thread \(e.tid): fsync of the temp file before any write") }
          s.synced = e.result == 0
          open[e.tid] = s
        } else if fd == s.directoryFD, s.renamed, e.result == 0 {
          report.sequences += 1
          open[e.tid] = nil
        }
      case "close":
        if var s = open[e.tid], let fd = firstInt(e.args), fd == s.tempFD {
          s.tempFD = -1
          open[e.tid] = s
        }
      case "rename", "renameat", "renameat2":
        guard paths.count >= 2, paths[0].hasPrefix(temp), paths[1] == stateFile else { continue }
        guard var s = open[e.tid] else {
          report.problems.append("thread \(e.tid): renamed \(temp) that this thread did not write")
          continue
        }
        if !s.wrote || !s.synced {
          report.problems.append("thread \(e.tid): renamed \(temp) before it was written and fsynced")
        }
        s.renamed = e.result == 0
        open[e.tid] = s
      default:
        break
      }
    }
    return report
  }

  /// The pid of the traced command: strace's only child.
  static func tracedChild(of stracePID: pid_t, timeout: Double = 10) -> pid_t? {
    let deadline = monotonic() + timeout
    while monotonic() < deadline {
      if let text = try? String(
        contentsOfFile: "/proc/\(stracePID)/task/\(stracePID)/children", encoding: .utf8),
        let pid = text.split(separator: " ").first.flatMap({ pid_t($0) })
      {
        return pid
      }
      sleepMilliseconds(2)
    }
    return nil
  }
}

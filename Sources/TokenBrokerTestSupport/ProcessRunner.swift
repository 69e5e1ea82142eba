import Foundation

/// Runs a command to completion without blocking the concurrency pool.
package enum ProcessRunner {
  package struct Result: Sendable {
    package var status: Int32
    package var stdout: String
    package var stderr: String
  }

  /// Output goes to files (a pipe read only at exit would stall a child that writes more
  /// than a pipe holds); the exit is awaited on a thread of its own.
  package static func run(_ arguments: [String], environment: [String: String]? = nil) async throws -> Result
  {
    var template = Array("/tmp/tb-run-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw Spawn.Failure(description: "mkdtemp failed") }
    let dir = String(cString: made)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let pid = try Spawn.start(
      arguments[0], Array(arguments.dropFirst()),
      environment: environment ?? ProcessInfo.processInfo.environment, stdout: dir + "/stdout",
      stderr: dir + "/stderr")
    let status = await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
      Thread { c.resume(returning: Spawn.waitBlocking(pid)) }.start()
    }
    func read(_ name: String) -> String {
      (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? ""
    }
    return Result(status: Spawn.exitStatus(status), stdout: read("stdout"), stderr: read("stderr"))
  }

  /// `setpriv` wrapper: run as another uid/gid with exactly these supplementary groups.
  package static func runAs(
    uid: UInt32, gid: UInt32, groups: [UInt32] = [], _ arguments: [String],
    environment: [String: String]? = nil
  ) async throws -> Result {
    var prefix = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)"]
    prefix.append(
      groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ","))
    return try await run(prefix + arguments, environment: environment)
  }
}

/// The package's own executables, next to the test bundle in the build directory.
package enum BuiltBinaries {
  package static var directory: String {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = me.deletingLastPathComponent()
    // `swift test` runs `<dir>/token-brokerPackageTests.xctest`.
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    return dir.path
  }

  /// Path of `name`; fails clearly when the product was not built.
  package static func path(_ name: String) throws -> String {
    let p = directory + "/" + name
    guard FileManager.default.isExecutableFile(atPath: p) else {
      throw BinaryMissing(description: "\(p) is not built; run `swift build` (or `make test`) first")
    }
    return p
  }

  package struct BinaryMissing: Error, CustomStringConvertible {
    package var description: String
  }
}

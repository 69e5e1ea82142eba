import Foundation

/// Runs a command to completion without blocking the concurrency pool.
public enum ProcessRunner {
  public struct Result: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  public static func run(_ arguments: [String], environment: [String: String]? = nil) async throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    return try await withCheckedThrowingContinuation { c in
      process.terminationHandler = { p in
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        c.resume(
          returning: Result(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self)))
      }
      do { try process.run() } catch { c.resume(throwing: error) }
    }
  }

  /// `setpriv` wrapper: run as another uid/gid with exactly these supplementary groups.
  public static func runAs(
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
public enum BuiltBinaries {
  public static var directory: String {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = me.deletingLastPathComponent()
    // `swift test` runs `<dir>/token-brokerPackageTests.xctest`.
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    return dir.path
  }

  /// Path of `name`; fails clearly when the product was not built.
  public static func path(_ name: String) throws -> String {
    let p = directory + "/" + name
    guard FileManager.default.isExecutableFile(atPath: p) else {
      throw BinaryMissing(description: "\(p) is not built; run `swift build` (or `make test`) first")
    }
    return p
  }

  public struct BinaryMissing: Error, CustomStringConvertible {
    public var description: String
  }
}

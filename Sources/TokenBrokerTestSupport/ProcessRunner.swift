import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a command to completion without blocking the concurrency pool.
package enum ProcessRunner {
  /// `environment` nil: this process's own. The exit is awaited on a thread of its own.
  package static func run(
    _ arguments: [String], environment: [String: String]? = nil, within seconds: Double = 120
  ) async throws -> ProcessOutput {
    let environment = environment ?? ProcessInfo.processInfo.environment
    return try await offload {
      try ChildProcess.run(
        arguments[0], Array(arguments.dropFirst()), environment: environment, within: seconds)
    }
  }

  /// `setpriv` wrapper: run as another uid/gid with exactly these supplementary groups.
  package static func runAs(
    uid: UInt32, gid: UInt32, groups: [UInt32] = [], _ arguments: [String],
    environment: [String: String]? = nil
  ) async throws -> ProcessOutput {
    var prefix = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)"]
    prefix.append(
      groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ","))
    return try await run(prefix + arguments, environment: environment)
  }
}

/// The package's own executables: in `$TOKEN_BROKER_BIN_DIR`, or next to the running test
/// bundle or tool (in `swift test` the products and the `.xctest` share the build directory).
package enum BuiltBinaries {
  package static let directory: Result<String, SetupError> = {
    var candidates: [String] = []
    if let dir = ProcessInfo.processInfo.environment["TOKEN_BROKER_BIN_DIR"], !dir.isEmpty {
      candidates.append(dir)
    }
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var up = me.deletingLastPathComponent()
    candidates.append(up.path)
    // `<dir>/token-brokerPackageTests.xctest`, or a bundle .../X.xctest/Contents/MacOS/X.
    for _ in 0..<3 {
      up = up.deletingLastPathComponent()
      candidates.append(up.path)
    }
    for dir in candidates where access(dir + "/token-brokerd", X_OK) == 0 {
      return .success(dir)
    }
    return .failure(
      SetupError(
        "token-brokerd is not built next to the tests or tools (looked in \(candidates.joined(separator: ", "))): "
          + "run `swift build --build-tests` (or `make test`) first, or set TOKEN_BROKER_BIN_DIR"))
  }()

  /// Path of `name`; fails clearly when the product was not built.
  package static func path(_ name: String) throws -> String {
    let p = try directory.get() + "/" + name
    guard access(p, X_OK) == 0 else {
      throw SetupError("\(p) is not built; run `swift build --build-tests` (or `make test`) first")
    }
    return p
  }

  package static var tokenBrokerd: String { get throws { try path("token-brokerd") } }
}

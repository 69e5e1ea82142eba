import Foundation
import Synchronization
import TokenBrokerTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Where the binaries under test are, and the tools the benchmarks build or install.
final class BenchEnvironment: Sendable {
  /// The build directory of this bench binary; token-brokerd and tokenctl must be there too.
  let binDirectory: String
  let brokerd: String
  let tokenctl: String
  /// The package root (the nearest parent of the binary with Package.swift), when found.
  let repository: String?
  /// `--udsload PATH`: a udsload.c to compile or a built udsload.
  let udsloadOverride: String?
  /// How a reproduce line starts (the bench as it was invoked).
  let invocation: String
  private let scratch: TempDirectory
  private let udsload = Mutex<String?>(nil)

  init(udsload: String?) throws {
    let exe = Proc.executable
    binDirectory = URL(fileURLWithPath: exe).deletingLastPathComponent().path
    brokerd = binDirectory + "/token-brokerd"
    tokenctl = binDirectory + "/tokenctl"
    for (path, product) in [(brokerd, "token-brokerd"), (tokenctl, "tokenctl")] where access(path, X_OK) != 0
    {
      throw SetupError(
        "\(path) is missing: build it into the bench's directory, e.g. "
          + "`swift build -c release --scratch-path .build-bench --product \(product)`")
    }
    var dir = URL(fileURLWithPath: binDirectory)
    var found: String?
    for _ in 0..<8 {
      if access(dir.path + "/Package.swift", R_OK) == 0 {
        found = dir.path
        break
      }
      dir = dir.deletingLastPathComponent()
    }
    if found == nil, access(FileManager.default.currentDirectoryPath + "/Package.swift", R_OK) == 0 {
      found = FileManager.default.currentDirectoryPath
    }
    repository = found
    udsloadOverride = udsload
    invocation = Self.shortPath(CommandLine.arguments[0])
    scratch = try TempDirectory("tbb-tools")
  }

  /// The path as typed, or relative to the current directory when it lies below it.
  private static func shortPath(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath + "/"
    let absolute = path.hasPrefix("/") ? path : cwd + path
    return absolute.hasPrefix(cwd) ? String(absolute.dropFirst(cwd.count)) : path
  }

  /// The udsload source: `--udsload`, else the project's own `udsload.c` beside the bench's
  /// sources (`<repo>/Sources/token-broker-bench/udsload.c`, or where this file was compiled).
  var udsloadSource: String? {
    if let o = udsloadOverride { return o }
    var candidates: [String] = []
    if let repository { candidates.append(repository + "/Sources/token-broker-bench/udsload.c") }
    candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/udsload.c")
    return candidates.first { access($0, R_OK) == 0 }
  }

  /// A built udsload: compiled once per run into a temporary directory (never into the repo).
  func udsloadBinary() throws -> String {
    try udsload.withLock { cached in
      if let cached { return cached }
      guard let source = udsloadSource else {
        throw SetupError(
          "cannot find udsload.c (looked for <repo>/Sources/token-broker-bench/udsload.c); pass --udsload PATH"
        )
      }
      if !source.hasSuffix(".c"), access(source, X_OK) == 0 {
        cached = source
        return source
      }
      guard access(source, R_OK) == 0 else {
        throw SetupError("\(source) is not readable; pass --udsload PATH")
      }
      let output = scratch.file("udsload")
      let r = try runToEnd("/usr/bin/cc", ["-O2", "-pthread", "-o", output, source], within: 120)
      guard r.status == 0 else { throw SetupError("cc \(source) failed:\n\(r.stderr)") }
      cached = output
      return output
    }
  }

  /// ` --udsload PATH` when one was given, for reproduce lines.
  var udsloadFlag: String { udsloadOverride.map { " --udsload \($0)" } ?? "" }

  /// Installs Debian packages with apt-get (the machine has no other way to get them).
  func aptInstall(_ packages: [String], reason: String) -> Bool {
    note("\(reason): installing \(packages.joined(separator: " ")) with apt-get")
    guard access("/usr/bin/apt-get", X_OK) == 0 else { return false }
    let r = try? runToEnd(
      "/usr/bin/apt-get", ["install", "-y", "--no-install-recommends"] + packages,
      environment: ["DEBIAN_FRONTEND": "noninteractive"], within: 600)
    if r?.status != 0 {
      note("apt-get install \(packages.joined(separator: " ")) failed: \(r?.stderr.suffix(400) ?? "not run")")
      return false
    }
    return true
  }

  /// An executable by name in the usual directories, or nil.
  static func which(_ name: String) -> String? {
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
      let p = dir + "/" + name
      if access(p, X_OK) == 0 { return p }
    }
    return nil
  }
}

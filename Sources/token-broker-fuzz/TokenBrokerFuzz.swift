import Foundation
import TokenBrokerFuzzTargets

#if canImport(Glibc)
  import Glibc
#endif

/// `token-broker-fuzz TARGET [ARGS...]`
///
/// Built with `--sanitize fuzzer`, libFuzzer is linked in and this hands ARGS to
/// `LLVMFuzzerRunDriver` (found with dlsym, so the same source builds without it):
/// corpus directories, `-max_total_time=300`, and so on. In a normal build,
/// ARGS are files and directories whose inputs are replayed through TARGET; a
/// broken invariant crashes, so the exit status tells CI whether all passed.
///
/// When the link keeps libFuzzer's own `main` instead of this one (a release link
/// with `--allow-multiple-definition`), libFuzzer calls `LLVMFuzzerInitialize`
/// below, which takes TARGET off the arguments the same way.
@main
enum TokenBrokerFuzz {
  typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
  typealias RunDriver =
    @convention(c) (
      UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
      TestOneInput
    ) -> Int32

  /// The target libFuzzer's callback calls (a C callback captures nothing).
  nonisolated(unsafe) static var selected: (@Sendable ([UInt8]) -> Void)?

  static func main() {
    disableBacktracer()
    var args = CommandLine.arguments
    let me = args.removeFirst()
    if args.first == "--list" {
      print(FuzzTargets.names.joined(separator: "\n"))
      return
    }
    // libFuzzer's -fork/-jobs children get libFuzzer's arguments only: they find the
    // target in the environment.
    let name: String
    if let first = args.first, FuzzTargets.named(first) != nil {
      name = first
      args.removeFirst()
    } else if let inherited = ProcessInfo.processInfo.environment["TOKEN_BROKER_FUZZ_TARGET"] {
      name = inherited
    } else {
      if let first = args.first, !first.hasPrefix("-") {
        FileHandle.standardError.write(Data("token-broker-fuzz: no target named \(first)\n".utf8))
      }
      usage(exit: 64)
    }
    guard let target = FuzzTargets.named(name) else { usage(exit: 64) }
    setenv("TOKEN_BROKER_FUZZ_TARGET", name, 1)
    let driver = dlsym(nil, "LLVMFuzzerRunDriver")  // RTLD_DEFAULT is NULL in glibc
    guard let driver, ProcessInfo.processInfo.environment["TOKEN_BROKER_FUZZ_REPLAY"] == nil else {
      exit(replay(target, name: name, paths: args))
    }
    selected = target
    var argv: [UnsafeMutablePointer<CChar>?] = ([me] + args).map { strdup($0) } + [nil]
    var argc = Int32(argv.count - 1)
    let run = unsafeBitCast(driver, to: RunDriver.self)
    let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
      var base = buffer.baseAddress
      return run(&argc, &base) { data, size in fuzzerTestOneInput(data, size) }
    }
    exit(status)
  }

  /// Swift's backtracer would hang after the crash libFuzzer wants to report, and
  /// LeakSanitizer takes Swift's weak-reference side tables of objects still alive at
  /// exit for leaks (every fork-mode job would end as a "crash"). Both read the
  /// environment when the process starts, so start again with them off (once; unless
  /// set by the caller).
  static func disableBacktracer() {
    let env = ProcessInfo.processInfo.environment
    guard env["SWIFT_BACKTRACE"] == nil || env["ASAN_OPTIONS"] == nil else { return }
    if env["SWIFT_BACKTRACE"] == nil { setenv("SWIFT_BACKTRACE", "enable=no", 1) }
    if env["ASAN_OPTIONS"] == nil { setenv("ASAN_OPTIONS", "detect_leaks=0", 1) }
    var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &argv)
  }

  /// Runs every file under `paths` (directories one level deep, sorted) through the target.
  static func replay(_ target: @Sendable ([UInt8]) -> Void, name: String, paths: [String]) -> Int32 {
    guard !paths.isEmpty else {
      FileHandle.standardError.write(
        Data(
          "token-broker-fuzz: no libFuzzer in this build; give files or directories to replay through \(name)\n"
            .utf8))
      return 64
    }
    var files: [String] = []
    for path in paths {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        FileHandle.standardError.write(Data("token-broker-fuzz: \(path): no such file or directory\n".utf8))
        return 66
      }
      if isDirectory.boolValue {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for entry in entries.sorted() where !entry.hasPrefix(".") {
          let file = path + "/" + entry
          var sub: ObjCBool = false
          if FileManager.default.fileExists(atPath: file, isDirectory: &sub), !sub.boolValue {
            files.append(file)
          }
        }
      } else {
        files.append(path)
      }
    }
    let verbose = ProcessInfo.processInfo.environment["TOKEN_BROKER_FUZZ_VERBOSE"] != nil
    for file in files {
      guard let data = FileManager.default.contents(atPath: file) else {
        FileHandle.standardError.write(Data("token-broker-fuzz: cannot read \(file)\n".utf8))
        return 66
      }
      if verbose { FileHandle.standardError.write(Data("replaying \(file)\n".utf8)) }
      target(Array(data))
    }
    print("token-broker-fuzz: \(name): replayed \(files.count) inputs, no invariant broken")
    return 0
  }

  static func usage(exit status: Int32) -> Never {
    FileHandle.standardError.write(
      Data(
        """
        usage: token-broker-fuzz TARGET [libFuzzer arguments | files and directories to replay]
               token-broker-fuzz --list
        targets: \(FuzzTargets.names.joined(separator: ", "))

        """.utf8))
    exit(status)
  }
}

/// libFuzzer's hook before fuzzing: when its own `main` runs, TARGET is still argv[1].
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
  _ argc: UnsafeMutablePointer<Int32>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> Int32 {
  guard TokenBrokerFuzz.selected == nil else { return 0 }
  TokenBrokerFuzz.disableBacktracer()
  guard let list = argv.pointee else { TokenBrokerFuzz.usage(exit: 64) }
  if argc.pointee >= 2, let first = list[1], let target = FuzzTargets.named(String(cString: first)) {
    TokenBrokerFuzz.selected = target
    setenv("TOKEN_BROKER_FUZZ_TARGET", first, 1)
    for i in 1..<Int(argc.pointee) { list[i] = list[i + 1] }
    argc.pointee -= 1
  } else if let name = ProcessInfo.processInfo.environment["TOKEN_BROKER_FUZZ_TARGET"],
    let target = FuzzTargets.named(name)
  {
    TokenBrokerFuzz.selected = target
  } else {
    TokenBrokerFuzz.usage(exit: 64)
  }
  return 0
}

/// libFuzzer's callback: one input through the selected target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
  TokenBrokerFuzz.selected?(bytes)
  return 0
}

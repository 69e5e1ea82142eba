import Testing
import TokenBrokerCore
import TokenBrokerTestSupport

@testable import TokenBrokerEngine

#if canImport(Glibc)
  import Glibc
#endif

/// The one read loop of the daemon's files (`SystemIO.readAll`): everything to the end, a
/// limit, and a failed read reported, never taken for the end of the file.
@Suite struct SystemIOTests {
  static func pipe(_ text: String) -> Int32 {
    var fds: [Int32] = [0, 0]
    #expect(Glibc.pipe(&fds) == 0)
    _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fds[1], $0.baseAddress!, text.utf8.count) }
    close(fds[1])
    return fds[0]
  }

  @Test func everythingUpToTheLimit() {
    let fd = Self.pipe("key = \"value\"\n")
    defer { close(fd) }
    #expect(SystemIO.readAll(fd, limit: 64) == .success(Array("key = \"value\"\n".utf8)))
    let big = Self.pipe(String(repeating: "x", count: 100))
    defer { close(big) }
    #expect(SystemIO.readAll(big, limit: 99) == .failure(.tooLarge))
  }

  @Test func aFailedReadIsAFailureNotTheEnd() throws {
    let dir = try TempDirectory.make("tb-io")
    let fd = open(dir, O_RDONLY)
    defer { close(fd) }
    #expect(SystemIO.readAll(fd, limit: 1 << 20) == .failure(.system(EISDIR)))
  }

  /// A directory given as the configuration was read as an empty file before.
  @Test func aConfigurationThatCannotBeReadSaysWhy() throws {
    let dir = try TempDirectory.make("tb-io")
    do {
      _ = try ConfigLoader(path: dir).load()
      Issue.record("a directory loaded as a configuration")
    } catch {
      #expect(
        error.problems.map(\.message) == ["cannot read the configuration: Is a directory; pass --config PATH"]
      )
    }
  }
}

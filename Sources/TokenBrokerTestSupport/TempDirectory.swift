import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh directory under /tmp, mode 0700, removed with everything in it on deinit. Short
/// (`/tmp/PREFIX-XXXXXX`), so socket paths in it stay far below the 107 bytes of `sun_path`.
package final class TempDirectory: Sendable {
  package let path: String

  package init(_ prefix: String = "tb") throws {
    path = try Self.make(prefix)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  /// Makes a directory like a ``TempDirectory`` that nobody removes: for what outlives the
  /// scope that made it (a harness's state, a tool's `--keep`).
  package static func make(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw SetupError.errno("mkdtemp /tmp/\(prefix)-XXXXXX") }
    return String(cString: made)
  }

  package func file(_ name: String) -> String { path + "/" + name }

  /// Writes `text` to `name` with `mode` (0600 unless told: literal secrets need it).
  @discardableResult
  package func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws -> String {
    try Self.write(file(name), text, mode: mode)
  }

  /// Writes `text` to `path` with `mode` through a temporary file and a rename, so that a
  /// daemon never reads a half-written file.
  @discardableResult
  package static func write(_ path: String, _ text: String, mode: mode_t = 0o600) throws -> String {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SetupError.errno("open \(temporary)") }
    fchmod(fd, mode)
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        let error = SetupError.errno("write \(temporary)")
        close(fd)
        throw error
      }
      written += n
    }
    close(fd)
    guard rename(temporary, path) == 0 else { throw SetupError.errno("rename \(path)") }
    return path
  }

  /// Makes the directory `name` in this one.
  @discardableResult
  package func makeDirectory(_ name: String, mode: mode_t = 0o700) throws -> String {
    let p = file(name)
    guard mkdir(p, mode) == 0 else { throw SetupError.errno("mkdir \(p)") }
    return p
  }
}

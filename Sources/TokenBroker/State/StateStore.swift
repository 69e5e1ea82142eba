import Foundation
import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// What the broker keeps across restarts for one provider: the current
/// (rotated) refresh token, and whether a login is needed.
public struct ProviderStateRecord: Sendable, Equatable, CustomStringConvertible {
  public var refreshToken: String?
  /// Fingerprint of the configured first refresh token this state descends from:
  /// when an operator configures a new one, the stored state is superseded.
  public var seed: String?
  public var needsLogin: Bool
  public var updatedAt: Double

  public init(refreshToken: String?, seed: String?, needsLogin: Bool, updatedAt: Double) {
    self.refreshToken = refreshToken
    self.seed = seed
    self.needsLogin = needsLogin
    self.updatedAt = updatedAt
  }

  public var description: String {
    "ProviderStateRecord(refresh_token: \(refreshToken == nil ? "none" : "<redacted>"), needsLogin: \(needsLogin))"
  }

  /// FNV-1a 64 of a seed secret: identifies it without storing it twice.
  public static func fingerprint(_ secret: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in secret.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    return String(h, radix: 16)
  }
}

/// Durable per-provider state files in `state_dir` (`NAME.state`, mode 0600):
/// temp file, fsync, rename, fsync the directory. A crash at any point leaves
/// either the old or the new file, never a torn one.
public struct StateStore: Sendable {
  public let directory: String

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public init(directory: String) {
    self.directory = directory
  }

  /// Creates the directory (0700) when missing; refuses one others can write.
  public func prepare() throws(Failure) {
    var st = stat()
    if stat(directory, &st) != 0 {
      guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
        throw Failure(
          description: "cannot create state_dir \(directory): \(String(cString: strerror(errno)))")
      }
      return
    }
    guard (st.st_mode & S_IFMT) == S_IFDIR else {
      throw Failure(description: "state_dir \(directory) is not a directory")
    }
    guard access(directory, W_OK) == 0 else {
      throw Failure(description: "state_dir \(directory) is not writable by uid \(geteuid())")
    }
  }

  func path(_ provider: String) -> String { "\(directory)/\(provider).state" }

  public func load(_ provider: String) throws(Failure) -> ProviderStateRecord? {
    let file = path(provider)
    guard let data = FileManager.default.contents(atPath: file) else {
      if access(file, F_OK) == 0 { throw Failure(description: "cannot read \(file)") }
      return nil
    }
    return try Self.decode(Array(data), file: file)
  }

  /// Parses a state file; a garbled one is an error (the daemon reports it and
  /// keeps the file for inspection rather than silently forgetting a grant).
  public static func decode(_ bytes: [UInt8], file: String) throws(Failure) -> ProviderStateRecord {
    guard let any = try? JSONSerialization.jsonObject(with: Data(bytes)), let o = any as? [String: Any],
      (o["version"] as? Int) == 1
    else {
      throw Failure(
        description: "\(file) is not a token-broker state file (version 1); move it away to start over")
    }
    return ProviderStateRecord(
      refreshToken: o["refresh_token"] as? String, seed: o["seed"] as? String,
      needsLogin: (o["needs_login"] as? Bool) ?? false, updatedAt: (o["updated_at"] as? Double) ?? 0)
  }

  static func encode(_ r: ProviderStateRecord) -> [UInt8] {
    var w = JSONWriter.Object()
    w.field("version", 1)
    w.field("refresh_token", r.refreshToken)
    w.field("seed", r.seed)
    w.field("needs_login", r.needsLogin)
    w.field("updated_at", Int(r.updatedAt))
    return w.finished() + [0x0A]
  }

  public func save(_ record: ProviderStateRecord, for provider: String) throws(Failure) {
    try Self.writeDurably(Self.encode(record), to: path(provider), directory: directory)
  }

  /// temp (0600, O_EXCL) → write → fsync → rename → fsync(dir).
  public static func writeDurably(_ bytes: [UInt8], to file: String, directory: String) throws(Failure) {
    let temp = file + ".tmp"
    func fail(_ what: String) -> Failure {
      Failure(description: "cannot \(what) \(temp): \(String(cString: strerror(errno)))")
    }
    unlink(temp)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw fail("create") }
    var ok = false
    defer {
      if !ok { unlink(temp) }
    }
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        close(fd)
        throw fail("write")
      }
      written += n
    }
    guard fsync(fd) == 0 else {
      close(fd)
      throw fail("fsync")
    }
    close(fd)
    guard rename(temp, file) == 0 else { throw fail("rename") }
    ok = true
    let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dfd >= 0 else { throw Failure(description: "cannot open \(directory) to fsync it") }
    defer { close(dfd) }
    guard fsync(dfd) == 0 else { throw Failure(description: "cannot fsync \(directory)") }
  }
}

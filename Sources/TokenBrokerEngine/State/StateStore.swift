import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// What the broker keeps across restarts for one provider: the current
/// (rotated) refresh token, and whether a login is needed.
package struct ProviderStateRecord: Sendable, Equatable, CustomStringConvertible {
  package var refreshToken: String?
  /// Fingerprint of the configured first refresh token this state descends from:
  /// when an operator configures a new one, the stored state is superseded.
  package var seed: String?
  package var needsLogin: Bool
  package var updatedAt: Double
  /// `CredentialIdentity.fingerprint` of the credential the refresh token belongs to
  /// (nil in files written before it was recorded).
  package var identity: String?

  package init(
    refreshToken: String?, seed: String?, needsLogin: Bool, updatedAt: Double, identity: String? = nil
  ) {
    self.refreshToken = refreshToken
    self.seed = seed
    self.needsLogin = needsLogin
    self.updatedAt = updatedAt
    self.identity = identity
  }

  package var description: String {
    "ProviderStateRecord(refresh_token: \(refreshToken == nil ? "none" : "<redacted>"), needsLogin: \(needsLogin))"
  }

  /// FNV-1a 64 of a seed secret: identifies it without storing it twice.
  package static func fingerprint(_ secret: String) -> String { CredentialIdentity.fnv1a(secret) }
}

/// Durable per-provider state files in `state_dir` (`NAME.state`, mode 0600):
/// temp file, fsync, rename, fsync the directory. A crash at any point leaves
/// either the old or the new file, never a torn one.
package struct StateStore: Sendable {
  package let directory: String

  package struct Failure: Error, CustomStringConvertible {
    package var description: String
  }

  package init(directory: String) {
    self.directory = directory
  }

  /// Creates the directory (0700) when missing; refuses one others can write.
  package func prepare() throws(Failure) {
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
    guard st.st_uid == geteuid() else {
      throw Failure(
        description:
          "state_dir \(directory) is owned by uid \(st.st_uid), not \(geteuid()) (the daemon's user): another user could plant refresh tokens there; chown it or choose another state_dir"
      )
    }
    guard st.st_mode & 0o022 == 0 else {
      throw Failure(
        description:
          "state_dir \(directory) is writable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 0700 \(directory)"
      )
    }
    guard access(directory, W_OK) == 0 else {
      throw Failure(description: "state_dir \(directory) is not writable by uid \(geteuid())")
    }
  }

  /// Takes `state_dir/.lock` for the life of the process: two daemons on one state
  /// directory would present the same rotating refresh tokens. Returns the descriptor.
  package func lock() throws(Failure) -> Int32 {
    let file = "\(directory)/.lock"
    let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else {
      throw Failure(description: "cannot open \(file): \(String(cString: strerror(errno)))")
    }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      throw Failure(
        description:
          "another token-brokerd uses state_dir \(directory) (\(file) is locked): stop it, or give this one its own state_dir"
      )
    }
    return fd
  }

  func path(_ provider: String) -> String { "\(directory)/\(provider).state" }

  /// The largest state file read (a real one is a few hundred bytes).
  static let maxFileBytes = 64 * 1024

  /// Reads `NAME.state`: nil when there is none. Refuses a symlink, a file that is not
  /// regular, one owned by another user, or one larger than 64 KiB.
  package func load(_ provider: String) throws(Failure) -> ProviderStateRecord? {
    let file = path(provider)
    let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else {
      if errno == ENOENT { return nil }
      throw Failure(description: "cannot read \(file): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
      throw Failure(description: "\(file) is not a regular file; move it away to start over")
    }
    guard st.st_uid == geteuid() else {
      throw Failure(
        description: "\(file) is owned by uid \(st.st_uid), not \(geteuid()); move it away to start over")
    }
    guard st.st_size <= Self.maxFileBytes else {
      throw Failure(
        description: "\(file) is larger than \(Self.maxFileBytes) bytes; move it away to start over")
    }
    switch SystemIO.readAll(fd, limit: Self.maxFileBytes) {
    case .success(let bytes): return try Self.decode(bytes, file: file)
    case .failure(.tooLarge):
      throw Failure(
        description: "\(file) is larger than \(Self.maxFileBytes) bytes; move it away to start over")
    case .failure(.system(let code)):
      throw Failure(description: "cannot read \(file): \(SystemIO.describe(errno: code))")
    }
  }

  /// Moves `NAME.state` aside as `NAME.state.WHY-TIMESTAMP` (kept for inspection, never
  /// read again); returns the new path.
  @discardableResult
  package func setAside(_ provider: String, why: String, now: Double) -> String? {
    let target = "\(path(provider)).\(why)-\(Int(now))"
    guard rename(path(provider), target) == 0 else { return nil }
    return target
  }

  /// Parses a state file; a garbled one is an error (the daemon reports it and
  /// keeps the file for inspection rather than silently forgetting a grant).
  package static func decode(_ bytes: [UInt8], file: String) throws(Failure) -> ProviderStateRecord {
    guard let o = JSONValue.parse(bytes), o.object != nil, o["version"]?.number == 1 else {
      throw Failure(
        description: "\(file) is not a token-broker state file (version 1); move it away to start over")
    }
    return ProviderStateRecord(
      refreshToken: o["refresh_token"]?.string, seed: o["seed"]?.string,
      needsLogin: o["needs_login"]?.bool ?? false, updatedAt: o["updated_at"]?.number ?? 0,
      identity: o["identity"]?.string)
  }

  static func encode(_ r: ProviderStateRecord) -> [UInt8] {
    var w = JSONWriter.Object()
    w.field("version", 1)
    w.field("refresh_token", r.refreshToken)
    w.field("seed", r.seed)
    w.field("needs_login", r.needsLogin)
    w.field("updated_at", Int(r.updatedAt))
    w.field("identity", r.identity)
    return w.finished() + [0x0A]
  }

  package func save(_ record: ProviderStateRecord, for provider: String) throws(Failure) {
    try Self.writeDurably(Self.encode(record), to: path(provider), directory: directory)
  }

  /// temp (0600, O_EXCL) → write → fsync → rename → fsync(dir).
  package static func writeDurably(_ bytes: [UInt8], to file: String, directory: String) throws(Failure) {
    // A name of its own per write: two writers never share (or unlink) one temp file.
    var template = Array((file + ".tmp-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let temp = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    func fail(_ what: String) -> Failure {
      Failure(description: "cannot \(what) \(temp): \(String(cString: strerror(errno)))")
    }
    guard fd >= 0 else { throw fail("create") }
    fchmod(fd, 0o600)
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

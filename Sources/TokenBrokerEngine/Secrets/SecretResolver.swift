import TokenBrokerCore

#if canImport(Glibc)
  import Glibc
#endif

/// Reads secrets from their sources: files (refused when others may read
/// them), environment variables and systemd credentials.
package struct SecretResolver: Sendable {
  package var environment: [String: String]
  /// Largest secret file accepted.
  static let maxBytes = 64 * 1024

  package init(environment: [String: String] = SystemIO.environment()) {
    self.environment = environment
  }

  package struct Failure: Error, CustomStringConvertible {
    package var description: String
  }

  package func resolve(_ source: SecretSource) throws(Failure) -> String {
    switch source {
    case .literal(let value):
      return value
    case .env(let name):
      guard let value = environment[name], !value.isEmpty else {
        throw Failure(description: "environment variable \(name) is not set or empty")
      }
      return value
    case .file(let path):
      return try readFile(path, refuseOtherReadable: true)
    case .credential(let name):
      guard let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty else {
        throw Failure(
          description:
            "credential \(name) needs $CREDENTIALS_DIRECTORY; run under systemd with LoadCredential=\(name):PATH"
        )
      }
      return try readFile(dir + "/" + name, refuseOtherReadable: false)
    }
  }

  /// Resolves every secret of a provider; problems name the key.
  package func resolve(provider p: ProviderConfig) -> (ResolvedSecrets, [(key: String, message: String)]) {
    var problems: [(String, String)] = []
    func get(_ key: String, _ source: SecretSource?) -> String? {
      guard let source else { return nil }
      do { return try resolve(source) } catch {
        problems.append((key, error.description))
        return nil
      }
    }
    var apiKey = get("api_key", p.apiKey)
    if let key = apiKey, let source = p.apiKey {
      apiKey = nil
      switch Self.checkedAPIKey(key) {
      case .success(let checked): apiKey = checked
      case .failure(let refused): problems.append(("api_key", "\(source) \(refused.why)"))
      }
    }
    let secrets = ResolvedSecrets(
      clientSecret: get("client_secret", p.clientSecret), password: get("password", p.password),
      refreshToken: get("refresh_token", p.refreshToken), apiKey: apiKey)
    return (secrets, problems)
  }

  struct Refused: Error {
    var why: String
  }

  /// An API key is served verbatim as a header line (`header`, `tokenctl header`) and as a
  /// `text/plain` body, so it must be visible ASCII (spaces allowed) like an upstream token:
  /// one trailing newline is dropped, any other line break or control byte is refused (a
  /// second line would inject a header). The reason never quotes the value.
  static func checkedAPIKey(_ value: String) -> Result<String, Refused> {
    let key = SecretSource.droppingOneLineEnd(value)
    for (offset, byte) in key.utf8.enumerated() where byte < 0x20 || byte >= 0x7F {
      let what: String
      switch byte {
      case 0x0A: what = "a line break (LF)"
      case 0x0D: what = "a carriage return (CR)"
      case 0x09: what = "a tab"
      case 0x80...: what = "a non-ASCII character"
      default: what = "a control character (0x\(String(byte, radix: 16, uppercase: true)))"
      }
      return .failure(
        Refused(
          why:
            "holds \(what) at byte \(offset + 1): an API key is served as a header line and must be "
            + "visible ASCII; keep only the key in it"))
    }
    guard !key.isEmpty else { return .failure(Refused(why: "is empty")) }
    return .success(String(key))
  }

  private func readFile(_ path: String, refuseOtherReadable: Bool) throws(Failure) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else {
      let code = errno
      let reason = String(cString: strerror(code))
      if code == EACCES, let me = ServiceUser.current(),
        let p = ServiceAccessCheck(user: me).readProblem(path)
      {
        throw Failure(
          description:
            "cannot read \(path) as user \(me.name): \(reason) (\(p.detail)); run as root: \(p.fix)")
      }
      throw Failure(description: "cannot read \(path): \(reason)")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
      throw Failure(description: "\(path) is not a regular file")
    }
    if refuseOtherReadable, st.st_mode & S_IROTH != 0 {
      throw Failure(
        description:
          "\(path) is readable by others (mode 0\(String(st.st_mode & 0o7777, radix: 8))); run: chmod o-rwx \(path)"
      )
    }
    guard st.st_size <= Self.maxBytes else {
      throw Failure(description: "\(path) is larger than \(Self.maxBytes) bytes; is it the right file?")
    }
    let bytes: [UInt8]
    switch SystemIO.readAll(fd, limit: Self.maxBytes) {
    case .success(let all): bytes = all
    case .failure(.tooLarge):
      throw Failure(description: "\(path) is larger than \(Self.maxBytes) bytes; is it the right file?")
    case .failure(.system(let code)):
      throw Failure(description: "cannot read \(path): \(SystemIO.describe(errno: code))")
    }
    var text = String(decoding: bytes, as: UTF8.self)
    while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
    guard !text.isEmpty else { throw Failure(description: "\(path) is empty") }
    return text
  }
}

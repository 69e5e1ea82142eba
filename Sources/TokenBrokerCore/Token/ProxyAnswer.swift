/// An HTTP proxy's answer to `CONNECT` (RFC 9110 9.3.6), read from the bytes received so far:
/// the upstream client's tunnel opens only on a 2xx status line and a head that ends before
/// any other byte (the endpoint's TLS comes next, and the client speaks first).
package enum ProxyAnswer: Sendable, Equatable {
  /// The head has not ended yet (at most `maxHeadBytes` so far).
  case incomplete
  /// 2xx: the tunnel is open.
  case open
  /// Another status; `reason` is the answer's reason phrase, printable ASCII, at most 80
  /// characters (it goes into `last_error`).
  case refused(status: Int, reason: String)
  /// Not an HTTP/1.x answer to `CONNECT`: what was wrong, for people.
  case malformed(String)

  /// The longest answer head read from a proxy.
  package static let maxHeadBytes = 16 * 1024

  package static func parse(_ bytes: [UInt8]) -> ProxyAnswer {
    guard let end = headEnd(bytes) else {
      return bytes.count > maxHeadBytes ? .malformed("an answer head over 16 KiB") : .incomplete
    }
    let statusLine = bytes[..<(bytes.firstIndex(of: 0x0D) ?? end)]
    let fields = statusLine.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
    guard fields.count >= 2, fields[0].starts(with: Array("HTTP/1.".utf8)), fields[0].count == 8,
      fields[1].count == 3, fields[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
      let status = Int(String(decoding: fields[1], as: UTF8.self)), status >= 100
    else {
      return .malformed("an answer that is not HTTP/1.x")
    }
    guard (200..<300).contains(status) else {
      return .refused(status: status, reason: fields.count > 2 ? printable(fields[2]) : "")
    }
    guard bytes.count == end + 4 else {
      return .malformed("bytes after its answer, before the endpoint's TLS")
    }
    return .open
  }

  /// Where the head's blank line starts (`\r\n\r\n`), if it has arrived.
  package static func headEnd(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    for i in 0...(bytes.count - 4)
    where bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D && bytes[i + 3] == 0x0A {
      return i
    }
    return nil
  }

  /// The authentication schemes a refusal's `Proxy-Authenticate` fields offer (RFC 9110
  /// 11.7.1), in order, each once: the first token of each field and of each challenge after a
  /// comma that is one (`Basic realm="x", Negotiate`), lowercased, letters, digits and `-`
  /// only, at most 8 of at most 32 characters. For the message of a 407: whether Basic, the
  /// only scheme the broker speaks, is among them.
  package static func authenticationSchemes(_ bytes: [UInt8]) -> [String] {
    guard let end = headEnd(bytes) else { return [] }
    var schemes: [String] = []
    let name = Array("proxy-authenticate:".utf8)
    for line in bytes[..<end].split(separator: 0x0A).dropFirst() {
      let lower = line.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
      guard lower.starts(with: name) else { continue }
      var inQuotes = false
      var challengeStart = true
      var token: [UInt8] = []
      func take() {
        if !token.isEmpty, token.count <= 32, schemes.count < 8 {
          let scheme = String(decoding: token, as: UTF8.self)
          if !schemes.contains(scheme) { schemes.append(scheme) }
        }
        token = []
      }
      for byte in lower.dropFirst(name.count) {
        if inQuotes {
          if byte == 0x22 { inQuotes = false }
          continue
        }
        switch byte {
        case 0x22:
          inQuotes = true
          challengeStart = false
          token = []
        case 0x2C:  // ",": a new challenge, or another parameter of this one
          token = []
          challengeStart = true
        case 0x20, 0x09, 0x0D:
          if challengeStart, !token.isEmpty {
            take()
            challengeStart = false
          }
        case 0x3D:  // "=": what came before was a parameter's name
          token = []
          challengeStart = false
        default:
          let allowed = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D
          if challengeStart, allowed {
            token.append(byte)
          } else if challengeStart {
            token = []
            challengeStart = false
          }
        }
      }
      if challengeStart { take() }
    }
    return schemes
  }

  /// A reason phrase fit for a log line: printable ASCII, at most 80 characters.
  static func printable(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7F }.prefix(80), as: UTF8.self)
  }
}

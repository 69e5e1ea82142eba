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

  /// A reason phrase fit for a log line: printable ASCII, at most 80 characters.
  static func printable(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7F }.prefix(80), as: UTF8.self)
  }
}

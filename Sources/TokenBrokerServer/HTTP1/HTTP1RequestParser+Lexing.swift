#if canImport(Glibc)
  import Glibc
#endif

/// Byte-level pieces of `HTTP1RequestParser`: lines, the blank line that ends a head,
/// tokens and numbers.
extension HTTP1RequestParser {
  static let httpSlash = Array("HTTP/".utf8)

  /// The line starting at `from`: where its content ends (before CR LF or LF) and where
  /// the next line starts; nil when no LF has arrived yet.
  static func line(in bytes: UnsafeRawBufferPointer, from: Int) -> (end: Int, next: Int)? {
    guard let lf = firstLF(in: bytes, from: from) else { return nil }
    let end = lf > from && bytes[lf - 1] == 0x0D ? lf - 1 : lf
    return (end, lf + 1)
  }

  /// The blank line ending a head, searched from `from`: `headEnd` is where it starts
  /// (after the last field line), `next` where the body starts.
  static func headEnd(in bytes: UnsafeRawBufferPointer, from: Int) -> (headEnd: Int, next: Int)? {
    var i = max(0, from)
    while let lf = firstLF(in: bytes, from: i) {
      let after = lf + 1
      if after < bytes.count, bytes[after] == 0x0A { return (after, after + 1) }
      if after + 1 < bytes.count, bytes[after] == 0x0D, bytes[after + 1] == 0x0A { return (after, after + 2) }
      i = after
    }
    return nil
  }

  /// Where the first LF at or after `from` is (every byte of every head is scanned).
  static func firstLF(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
    firstIndex(of: 0x0A, in: bytes, from: from)
  }

  /// Where the first `byte` at or after `from` is, found with memchr (a loop over a buffer's
  /// bytes is several times slower; the fast path scans every request).
  static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
    guard from >= 0, from < bytes.count, let base = bytes.baseAddress,
      let hit = memchr(base + from, Int32(byte), bytes.count - from)
    else { return nil }
    return base.distance(to: UnsafeRawPointer(hit))
  }

  /// The lines of a head, `end` being just after the LF of its last line.
  struct LineReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    mutating func next() -> UnsafeRawBufferPointer.SubSequence? {
      guard position < end, let line = HTTP1RequestParser.line(in: bytes, from: position) else { return nil }
      defer { position = line.next }
      return bytes[position..<line.end]
    }
  }

  /// RFC 9110 `tchar`.
  static func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:  // !#$%&'*+-.^_`|~
      return true
    default:
      return false
    }
  }

  static func equalsIgnoringCase<S: StringProtocol>(_ s: S, _ lowercase: StaticString) -> Bool {
    let a = s.utf8
    guard a.count == lowercase.utf8CodeUnitCount else { return false }
    return lowercase.withUTF8Buffer { b in
      zip(a, b).allSatisfy { x, y in (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == y }
    }
  }

  /// A Content-Length value: 1 to 18 decimal digits.
  static func decimal(_ s: String) -> Int? {
    let u = s.utf8
    guard !u.isEmpty, u.count <= 18 else { return nil }
    var n = 0
    for b in u {
      guard b >= 0x30, b <= 0x39 else { return nil }
      n = n * 10 + Int(b - 0x30)
    }
    return n
  }
}

extension Substring {
  var trimmingSpaces: Substring {
    var s = self
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return s
  }
}

import NIOCore
import NIOHTTP1

extension ServerResponse {
  /// The whole answer as HTTP/1.1 bytes: status line, the response's own header fields,
  /// `Content-Length`, `Connection: close` when the connection ends, then the body. An
  /// answer to HEAD has neither body nor length (RFC 9110 9.3.2 allows leaving it out).
  ///
  /// The head is copied into the buffer in one pass over its pieces (one capacity check,
  /// no intermediate strings), or from its `PreparedHead`: this runs for every cached token
  /// served.
  func encode(into out: inout ByteBuffer, keepAlive: Bool, includeBody: Bool) {
    let fields = prepared?.count ?? Self.measure(status: status, contentType: contentType, headers: headers)
    // The length's 20 digits and the end of the head.
    let headBytes = fields + 64
    out.reserveCapacity(minimumWritableBytes: headBytes + (includeBody ? body.count : 0))
    let length = body.count
    out.writeWithUnsafeMutableBytes(minimumWritableBytes: headBytes) { buffer in
      var head = HeadWriter(buffer)
      if let prepared {
        prepared.withUnsafeBytes { head.append($0) }
      } else {
        head.appendFields(status: status, contentType: contentType, headers: headers)
      }
      if includeBody {
        head.append("Content-Length: ")
        head.appendDecimal(length)
        head.append("\r\n")
      }
      head.append(keepAlive ? "\r\n" : "Connection: close\r\n\r\n")
      return head.count
    }
    if includeBody { out.writeBytes(body) }
  }

  /// The status line and fields of a head, for `PreparedHead`.
  static func encodedHead(status: HTTPResponseStatus, contentType: String, headers: [(String, String)])
    -> [UInt8]
  {
    let size = measure(status: status, contentType: contentType, headers: headers)
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
      var head = HeadWriter(UnsafeMutableRawBufferPointer(buffer))
      head.appendFields(status: status, contentType: contentType, headers: headers)
      count = head.count
    }
  }

  /// At least the bytes of the status line and fields.
  static func measure(status: HTTPResponseStatus, contentType: String, headers: [(String, String)]) -> Int {
    // "HTTP/1.1 " + a 20-digit code + " " + "\r\nContent-Type: " + "\r\n", then the variable parts.
    var bytes = 48 + status.reasonPhrase.utf8.count + contentType.utf8.count
    for (name, value) in headers { bytes += name.utf8.count + value.utf8.count + 4 }
    return bytes
  }
}

/// Copies the pieces of a response head into memory sized for them beforehand.
struct HeadWriter {
  private let base: UnsafeMutableRawBufferPointer
  private(set) var count = 0

  init(_ base: UnsafeMutableRawBufferPointer) { self.base = base }

  mutating func append(_ s: StaticString) {
    append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
  }

  mutating func append(_ s: String) {
    let contiguous: Void? = s.utf8.withContiguousStorageIfAvailable { append(UnsafeRawBufferPointer($0)) }
    if contiguous == nil { for b in s.utf8 { append(b) } }
  }

  mutating func append(_ bytes: UnsafeRawBufferPointer) {
    precondition(count + bytes.count <= base.count, "response head larger than measured")
    guard let from = bytes.baseAddress, let to = base.baseAddress else { return }
    (to + count).copyMemory(from: from, byteCount: bytes.count)
    count += bytes.count
  }

  mutating func append(_ byte: UInt8) {
    precondition(count < base.count, "response head larger than measured")
    base[count] = byte
    count += 1
  }

  /// The status line, `Content-Type` and the other fields, each line ending in CRLF.
  mutating func appendFields(status: HTTPResponseStatus, contentType: String, headers: [(String, String)]) {
    append("HTTP/1.1 ")
    appendDecimal(Int(status.code))
    append(" ")
    append(status.reasonPhrase)
    append("\r\nContent-Type: ")
    append(contentType)
    append("\r\n")
    for (name, value) in headers {
      append(name)
      append(": ")
      append(value)
      append("\r\n")
    }
  }

  /// A non-negative integer in decimal.
  mutating func appendDecimal(_ value: Int) {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: any Int fits
    withUnsafeMutableBytes(of: &digits) { scratch in
      var v = max(0, value)
      var i = scratch.count
      repeat {
        i -= 1
        scratch[i] = UInt8(ascii: "0") + UInt8(v % 10)
        v /= 10
      } while v > 0
      append(UnsafeRawBufferPointer(rebasing: scratch[i...]))
    }
  }
}

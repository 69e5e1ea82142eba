import TokenBrokerCore

/// An HTTP/1.1 request parser for the broker's socket (RFC 9112), strict and bounded:
/// no I/O, no allocation beyond the request it returns. Bytes go in as they arrive;
/// a request comes out once its head and body are complete. Everything outside the
/// subset a local client needs is refused with a 4xx that says why, never guessed at:
/// obs-fold, whitespace before a colon, conflicting lengths, transfer codings other
/// than `chunked`, non-ASCII targets. Lines end in CRLF or a bare LF.
package struct HTTP1RequestParser: Sendable {
  package struct Request: Sendable, Equatable {
    package var method: String
    /// The request target as sent (origin form: path and query).
    package var target: String
    /// 0 or 1 (HTTP/1.0 or HTTP/1.1).
    package var minorVersion: Int
    /// Header fields in order, names as sent, values without surrounding whitespace.
    package var headers: [(String, String)]
    package var body: [UInt8]
    /// The connection stays open after the answer (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    package var keepAlive: Bool

    package static func == (a: Request, b: Request) -> Bool {
      a.method == b.method && a.target == b.target && a.minorVersion == b.minorVersion
        && a.headers.elementsEqual(b.headers, by: { $0.0 == $1.0 && $0.1 == $1.1 })
        && a.body == b.body && a.keepAlive == b.keepAlive
    }
  }

  /// Why a request was refused: the status to answer, an error code and a message for
  /// people. After an error the connection must be closed (the byte stream is lost).
  package struct Failure: Error, Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
      /// 400: not HTTP/1.x as this server reads it.
      case malformed
      /// 413: a body over the cap.
      case bodyTooLarge
      /// 431: a request line or header fields over the caps.
      case headTooLarge
    }
    package var kind: Kind
    package var message: String

    package var status: Int {
      switch kind {
      case .malformed: return 400
      case .bodyTooLarge: return 413
      case .headTooLarge: return 431
      }
    }
    package var code: String {
      switch kind {
      case .malformed: return "bad_request"
      case .bodyTooLarge: return "payload_too_large"
      case .headTooLarge: return "headers_too_large"
      }
    }
  }

  package let limits: ServerLimits
  private var state = State.head(scanned: 0)
  private var pending: Request?
  /// CR and LF bytes consumed before the request line now awaited.
  private var emptyLineBytes = 0

  /// The CR and LF bytes allowed before a request line (RFC 9112 2.2 asks to ignore "at
  /// least one" empty line): four CRLF pairs. More is not a client, and is refused.
  package static let maxEmptyLineBytes = 8

  private enum State: Sendable {
    /// Waiting for the end of a head; `scanned` bytes hold no blank line yet.
    case head(scanned: Int)
    /// A body of this many remaining bytes.
    case fixedBody(remaining: Int)
    /// A chunked body: the next thing is a chunk-size line, chunk data, or the trailer.
    case chunkSize
    case chunkData(remaining: Int)
    case chunkDataEnd
    case trailer(fields: Int, bytes: Int)
  }

  package init(limits: ServerLimits) {
    self.limits = limits
  }

  /// The longest head read before it is refused: the request line and the header caps,
  /// with room for the syntax around them.
  var maxHeadBytes: Int {
    limits.maxRequestLineBytes + limits.maxHeaderBytes + 4 * limits.maxHeaderCount + 64
  }

  /// No request has started: the buffer holds nothing but what follows a whole request.
  package var isIdle: Bool {
    if case .head(let scanned) = state { return scanned == 0 && pending == nil }
    return false
  }

  /// Reads the next request from `bytes` (all that is buffered and not yet consumed),
  /// returning it and how many bytes it used, or nil and the bytes consumed so far when
  /// more are needed. Consumed bytes must be dropped before the next call.
  package mutating func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> (Request?, consumed: Int) {
    var offset = 0
    while true {
      switch state {
      case .head(let scanned):
        let skipped = scanned == 0 ? try skipEmptyLines(bytes) : 0
        guard let (request, used) = try parseHead(bytes, from: skipped, scanned: scanned) else {
          return (nil, skipped)
        }
        offset += used
        if case .head = state { return (request, offset) }
        pending = request
      case .fixedBody(let remaining):
        let missing = takeBody(bytes, at: &offset, upTo: remaining)
        guard missing == 0 else {
          state = .fixedBody(remaining: missing)
          return (nil, offset)
        }
        return (finish(), offset)
      case .chunkSize:
        guard let line = Self.line(in: bytes, from: offset) else {
          if bytes.count - offset > 1024 { throw malformed("a chunk-size line over 1024 bytes") }
          return (nil, offset)
        }
        try requireCRLF(line)
        let size = try chunkSize(bytes[offset..<line.end])
        offset = line.next
        if size == 0 {
          state = .trailer(fields: 0, bytes: 0)
        } else {
          guard pending!.body.count + size <= limits.maxBodyBytes else { throw bodyTooLarge() }
          state = .chunkData(remaining: size)
        }
      case .chunkData(let remaining):
        let missing = takeBody(bytes, at: &offset, upTo: remaining)
        guard missing == 0 else {
          state = .chunkData(remaining: missing)
          return (nil, offset)
        }
        state = .chunkDataEnd
      case .chunkDataEnd:
        guard let line = Self.line(in: bytes, from: offset) else {
          if bytes.count - offset >= 2 { throw malformed("chunk data longer than its size") }
          return (nil, offset)
        }
        guard line.end == offset else { throw malformed("chunk data longer than its size") }
        try requireCRLF(line)
        offset = line.next
        state = .chunkSize
      case .trailer(let fields, let total):
        guard let line = Self.line(in: bytes, from: offset) else {
          if total + bytes.count - offset > limits.maxHeaderBytes {
            throw headTooLarge("trailer fields over \(limits.maxHeaderBytes) bytes")
          }
          return (nil, offset)
        }
        try requireCRLF(line)
        let length = line.end - offset
        let start = offset
        offset = line.next
        if length == 0 { return (finish(), offset) }
        guard fields < limits.maxHeaderCount, total + length <= limits.maxHeaderBytes else {
          throw headTooLarge("trailer fields over \(limits.maxHeaderBytes) bytes")
        }
        // Ignored, but read as fields are: a line that is not one ends the connection, and so
        // does a framing field (RFC 9110 6.5.1: never in a trailer; llhttp refuses it too).
        let (name, _) = try headerField(bytes[start..<line.end])
        if Self.equalsIgnoringCase(name, "transfer-encoding")
          || Self.equalsIgnoringCase(name, "content-length")
        {
          throw malformed("a \(name) field in the trailer section")
        }
        state = .trailer(fields: fields + 1, bytes: total + length)
      }
    }
  }

  /// Moves up to `count` body bytes from `offset` into the pending request; returns how
  /// many of them have not arrived yet.
  private mutating func takeBody(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, upTo count: Int)
    -> Int
  {
    let available = min(count, bytes.count - offset)
    pending!.body.append(contentsOf: bytes[offset..<(offset + available)])
    offset += available
    return count - available
  }

  private mutating func finish() -> Request {
    state = .head(scanned: 0)
    defer { pending = nil }
    return pending!
  }

  // MARK: Head

  /// Empty lines before a request line are ignored (RFC 9112 2.2), up to
  /// `maxEmptyLineBytes`: returns how many CR and LF bytes lead `bytes`, to be consumed
  /// (never kept and scanned again). The count runs across calls until a head is read.
  private mutating func skipEmptyLines(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
    var start = 0
    while start < bytes.count, bytes[start] == 0x0D || bytes[start] == 0x0A {
      start += 1
      emptyLineBytes += 1
      guard emptyLineBytes <= Self.maxEmptyLineBytes else {
        throw malformed("more than \(Self.maxEmptyLineBytes / 2) empty lines before the request line")
      }
    }
    return start
  }

  /// The head starting at `start` in `bytes`, once its blank line is there. `scanned`
  /// counts bytes from `start` already known to hold no blank line.
  private mutating func parseHead(_ bytes: UnsafeRawBufferPointer, from start: Int, scanned: Int)
    throws(Failure) -> (Request, Int)?
  {
    guard let end = Self.headEnd(in: bytes, from: start + max(0, scanned - 3)) else {
      if bytes.count - start > maxHeadBytes {
        throw headTooLarge(
          Self.line(in: bytes, from: start) == nil
            ? "request line over \(limits.maxRequestLineBytes) bytes"
            : "request head over \(maxHeadBytes) bytes")
      }
      state = .head(scanned: bytes.count - start)
      return nil
    }
    emptyLineBytes = 0
    var lines = LineReader(bytes: bytes, position: start, end: end.headEnd)
    var request = try requestLine(lines.next()!)
    var fieldBytes = 0
    var contentLength: Int?
    var chunked = false
    var connectionClose = false
    var connectionKeepAlive = false
    while let line = lines.next() {
      guard request.headers.count < limits.maxHeaderCount else {
        throw headTooLarge("more than \(limits.maxHeaderCount) header fields")
      }
      let (name, value) = try headerField(line)
      fieldBytes += name.utf8.count + value.utf8.count + 4
      guard fieldBytes <= limits.maxHeaderBytes else {
        throw headTooLarge("header fields over \(limits.maxHeaderBytes) bytes")
      }
      if Self.equalsIgnoringCase(name, "content-length") {
        try refuseTrailingBlank(line, name: "Content-Length")
        guard let n = Self.decimal(value) else {
          throw malformed("Content-Length \(quote(value)) is not a number")
        }
        // Even two equal ones: RFC 9112 6.3 lets a recipient take them, llhttp refuses them,
        // and the body's framing must not depend on which of two parsers reads it.
        if contentLength != nil {
          throw malformed("two Content-Length fields; send one")
        }
        contentLength = n
      } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
        try refuseTrailingBlank(line, name: "Transfer-Encoding")
        guard Self.equalsIgnoringCase(value, "chunked"), !chunked else {
          throw malformed(
            "Transfer-Encoding \(quote(value)) is not supported; send Content-Length or chunked")
        }
        chunked = true
      } else if Self.equalsIgnoringCase(name, "connection") {
        for option in value.split(separator: ",") {
          let o = option.trimmingSpaces
          if Self.equalsIgnoringCase(o, "close") { connectionClose = true }
          if Self.equalsIgnoringCase(o, "keep-alive") { connectionKeepAlive = true }
        }
      }
      request.headers.append((name, value))
    }
    request.keepAlive = !connectionClose && (request.minorVersion == 1 || connectionKeepAlive)
    if chunked {
      guard contentLength == nil else { throw malformed("both Content-Length and Transfer-Encoding") }
      guard request.minorVersion == 1 else { throw malformed("Transfer-Encoding in an HTTP/1.0 request") }
      state = .chunkSize
    } else if let n = contentLength, n > 0 {
      guard n <= limits.maxBodyBytes else { throw bodyTooLarge() }
      state = .fixedBody(remaining: n)
    } else {
      state = .head(scanned: 0)
    }
    return (request, end.next)
  }

  private func requestLine(_ line: UnsafeRawBufferPointer.SubSequence) throws(Failure) -> Request {
    guard let firstSpace = line.firstIndex(of: 0x20) else { throw malformed("no request line") }
    let method = line[line.startIndex..<firstSpace]
    guard !method.isEmpty, method.count <= 32, method.allSatisfy(Self.isTokenByte) else {
      throw malformed("the method is not a token")
    }
    let rest = line[(firstSpace + 1)...]
    guard let secondSpace = rest.lastIndex(of: 0x20) else {
      throw malformed("no HTTP version in the request line")
    }
    let target = rest[rest.startIndex..<secondSpace]
    let version = rest[(secondSpace + 1)...]
    guard target.count <= limits.maxRequestLineBytes else {
      throw headTooLarge("request target over \(limits.maxRequestLineBytes) bytes")
    }
    guard version.count == 8, version.starts(with: Self.httpSlash), version[version.startIndex + 6] == 0x2E
    else { throw malformed("no HTTP version in the request line") }
    let major = version[version.startIndex + 5]
    let minor = version[version.startIndex + 7]
    guard major == UInt8(ascii: "1"), minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
      throw malformed(
        "HTTP version \(String(decoding: version.dropFirst(5), as: UTF8.self)) is not served; use HTTP/1.1")
    }
    guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
      throw malformed("the request target must be a path of visible ASCII (percent-encode the rest)")
    }
    return Request(
      method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
      minorVersion: minor == UInt8(ascii: "1") ? 1 : 0, headers: [], body: [], keepAlive: true)
  }

  private func headerField(_ line: UnsafeRawBufferPointer.SubSequence) throws(Failure) -> (String, String) {
    if line.first == 0x20 || line.first == 0x09 { throw malformed("a folded header line (obs-fold)") }
    guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
      throw malformed("a header line without a colon")
    }
    let name = line[line.startIndex..<colon]
    guard !name.isEmpty, name.allSatisfy(Self.isTokenByte) else {
      throw malformed("a header name that is not a token")
    }
    var value = line[(colon + 1)...]
    while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
    while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
    guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
      throw malformed("a control character in the value of \(String(decoding: name, as: UTF8.self))")
    }
    return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
  }

  /// `chunked` and a tab is chunked to RFC 9110 (5.5), not to llhttp, and `20` and a tab is
  /// not a length to it: a framing field that two parsers could read differently is refused.
  private func refuseTrailingBlank(_ line: UnsafeRawBufferPointer.SubSequence, name: String) throws(Failure) {
    if let last = line.last, last == 0x20 || last == 0x09 {
      throw malformed("a \(name) value that ends in a blank")
    }
  }

  /// A bare LF is a line end in a head (RFC 9112 2.2 lets a recipient take it), never in the
  /// chunked framing: a body whose framing two parsers could read differently is refused.
  private func requireCRLF(_ line: (end: Int, next: Int)) throws(Failure) {
    guard line.next - line.end == 2 else {
      throw malformed("a line of the chunked body that ends in a bare LF; end each with CRLF")
    }
  }

  private func chunkSize(_ line: UnsafeRawBufferPointer.SubSequence) throws(Failure) -> Int {
    var size = 0
    var digits = 0
    var i = line.startIndex
    while i < line.endIndex, let v = FormDecoding.hex(line[i]) {
      digits += 1
      guard digits <= 8 else { throw bodyTooLarge() }
      size = size << 4 | Int(v)
      i += 1
    }
    guard digits > 0 else {
      throw malformed(line.isEmpty ? "an empty chunk-size line" : "a chunk size that is not hexadecimal")
    }
    try chunkExtensions(line[i...])
    return size
  }

  /// What may follow a chunk size (RFC 9112 7.1.1), read and ignored:
  /// `*( ";" name [ "=" ( token / quoted-string ) ] )`. RFC 9112 allows blanks around `;` and
  /// `=` (BWS); llhttp does not, and neither does this reader: a chunked body that two parsers
  /// could frame differently is refused.
  private func chunkExtensions(_ text: UnsafeRawBufferPointer.SubSequence) throws(Failure) {
    let bad = malformed("a chunk size followed by something other than chunk extensions (;name=value)")
    var i = text.startIndex
    func token() -> Bool {
      let start = i
      while i < text.endIndex, Self.isTokenByte(text[i]) { i += 1 }
      return i > start
    }
    while i < text.endIndex {
      guard text[i] == UInt8(ascii: ";") else { throw bad }
      i += 1
      guard token() else { throw bad }
      guard i < text.endIndex, text[i] == UInt8(ascii: "=") else { continue }
      i += 1
      guard i < text.endIndex else { throw bad }
      if text[i] != UInt8(ascii: "\"") {
        guard token() else { throw bad }
        continue
      }
      i += 1
      while true {
        guard i < text.endIndex else { throw bad }
        let c = text[i]
        i += 1
        if c == UInt8(ascii: "\"") { break }
        if c == UInt8(ascii: "\\") {
          guard i < text.endIndex, text[i] == 0x09 || text[i] >= 0x20 && text[i] != 0x7F else { throw bad }
          i += 1
        } else if !(c == 0x09 || c >= 0x20 && c != 0x7F) {
          throw bad
        }
      }
    }
  }

  // MARK: Errors

  private func malformed(_ message: String) -> Failure { Failure(kind: .malformed, message: message) }
  private func headTooLarge(_ message: String) -> Failure { Failure(kind: .headTooLarge, message: message) }
  private func bodyTooLarge() -> Failure {
    Failure(kind: .bodyTooLarge, message: "request body over \(limits.maxBodyBytes) bytes")
  }
  private func quote(_ value: String) -> String {
    "\"" + String(value.prefix(40).map { $0.isASCII && !$0.isNewline ? $0 : "?" }) + "\""
  }
}

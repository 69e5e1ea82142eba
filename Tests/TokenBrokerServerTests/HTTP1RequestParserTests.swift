import Testing
import TokenBrokerServer

/// The socket's HTTP/1.1 parser on bytes alone: what it accepts, what it refuses (and
/// with which status), and that a request cut at any byte reads the same as whole.
struct HTTP1RequestParserTests {
  typealias Request = HTTP1RequestParser.Request

  /// Feeds `text` in pieces of `step` bytes the way the connection handler does (kept
  /// bytes are offered again with the new ones) and returns every request read.
  static func parse(_ text: String, step: Int = .max, limits: ServerLimits = ServerLimits()) throws
    -> [Request]
  {
    var parser = HTTP1RequestParser(limits: limits)
    let all = Array(text.utf8)
    var buffered: [UInt8] = []
    var out: [Request] = []
    var offset = 0
    while offset < all.count {
      let end = min(all.count, offset + max(1, min(step, all.count)))
      buffered += all[offset..<end]
      offset = end
      while !buffered.isEmpty {
        let (request, consumed) = try buffered.withUnsafeBytes { bytes in
          try parser.parse(bytes)
        }
        buffered.removeFirst(consumed)
        guard let request else { break }
        out.append(request)
      }
    }
    return out
  }

  static func failure(_ text: String, limits: ServerLimits = ServerLimits()) -> HTTP1RequestParser.Failure? {
    do {
      _ = try parse(text, limits: limits)
      return nil
    } catch {
      return error as? HTTP1RequestParser.Failure
    }
  }

  @Test func aGetWithHeadersIsReadWhole() throws {
    let r = try Self.parse(
      "GET /v1/token/energy?scope=a%20b HTTP/1.1\r\nHost: x\r\nAccept:  text/plain \r\n\r\n")
    #expect(r.count == 1)
    #expect(r[0].method == "GET")
    #expect(r[0].target == "/v1/token/energy?scope=a%20b")
    #expect(r[0].minorVersion == 1)
    #expect(r[0].headers.map { "\($0.0)=\($0.1)" } == ["Host=x", "Accept=text/plain"])
    #expect(r[0].keepAlive)
    #expect(r[0].body.isEmpty)
  }

  @Test func pipelinedRequestsComeOutInOrder() throws {
    let text =
      "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nConnection: close\r\n\r\n"
    let r = try Self.parse(text)
    #expect(r.map(\.target) == ["/a", "/b", "/c"])
    #expect(r[1].body == Array("xyz".utf8))
    #expect(r.map(\.keepAlive) == [true, true, false])
  }

  @Test(arguments: [1, 2, 3, 7, 64])
  func aRequestCutAtAnyByteReadsTheSame(step: Int) throws {
    let text =
      "\r\nPOST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nX-Trailer: t\r\n\r\n"
      + "GET /v1/status HTTP/1.0\nConnection: keep-alive\n\n"
    let whole = try Self.parse(text)
    #expect(whole.count == 2)
    #expect(whole[0].body == Array("abcdef".utf8))
    #expect(whole[1].minorVersion == 0 && whole[1].keepAlive)
    #expect(try Self.parse(text, step: step) == whole)
  }

  @Test func http10ClosesUnlessAskedToKeepAlive() throws {
    #expect(try Self.parse("GET / HTTP/1.0\r\n\r\n")[0].keepAlive == false)
    #expect(try Self.parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")[0].keepAlive == false)
  }

  @Test(arguments: [
    ("GET\r\n\r\n", "no request line"),
    ("GET / HTTP/9.9\r\n\r\n", "HTTP version 9.9 is not served; use HTTP/1.1"),
    ("GET / HTTP/1.1\r\n folded: x\r\n\r\n", "a folded header line (obs-fold)"),
    ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "a header name that is not a token"),
    ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", "a header line without a colon"),
    (
      "GET http://x/ HTTP/1.1\r\n\r\n",
      "the request target must be a path of visible ASCII (percent-encode the rest)"
    ),
    (
      "GET /\u{e9} HTTP/1.1\r\n\r\n",
      "the request target must be a path of visible ASCII (percent-encode the rest)"
    ),
    (
      "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
      "two Content-Length fields; send one"
    ),
    // Found by http-differential: llhttp refuses two equal ones too.
    (
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "two Content-Length fields; send one"
    ),
    ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "Content-Length \"-1\" is not a number"),
    (
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "both Content-Length and Transfer-Encoding"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "Transfer-Encoding \"gzip, chunked\" is not supported; send Content-Length or chunked"
    ),
    ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a chunk size that is not hexadecimal"),
    ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "chunk data longer than its size"),
    // Found by the http-differential fuzz target: llhttp refuses a bare LF anywhere in the
    // chunked framing, where the parser took "{}\r" as the data and the "\n" as its line end.
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\r\n0\r\n\r\n",
      "a line of the chunked body that ends in a bare LF; end each with CRLF"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
      "a line of the chunked body that ends in a bare LF; end each with CRLF"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-T: t\n\r\n",
      "a line of the chunked body that ends in a bare LF; end each with CRLF"
    ),
    // Also found by http-differential: a framing field llhttp reads differently.
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
      "a Transfer-Encoding value that ends in a blank"
    ),
    ("POST / HTTP/1.1\r\nContent-Length: 2 \r\n\r\n{}", "a Content-Length value that ends in a blank"),
    // Also found by http-differential: anything after a chunk size but extensions.
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\t\r\n{}\r\n0\r\n\r\n",
      "a chunk size followed by something other than chunk extensions (;name=value)"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 junk\r\n{}\r\n0\r\n\r\n",
      "a chunk size followed by something other than chunk extensions (;name=value)"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;=x\r\n{}\r\n0\r\n\r\n",
      "a chunk size followed by something other than chunk extensions (;name=value)"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;\text\r\n{}\r\n0\r\n\r\n",
      "a chunk size followed by something other than chunk extensions (;name=value)"
    ),
    // Also found by http-differential: a framing field in the trailer section, and a trailer
    // line that is no field, were taken and ignored.
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
      "a Transfer-Encoding field in the trailer section"
    ),
    (
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\u{8}\r\n\r\n",
      "a header line without a colon"
    ),
    ("GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", "a control character in the value of X"),
  ])
  func malformedRequestsAre400WithTheReason(text: String, message: String) {
    let f = Self.failure(text)
    #expect(f?.status == 400)
    #expect(f?.code == "bad_request")
    #expect(f?.message == message)
  }

  @Test func headCapsAre431AndBodyCapsAre413() {
    var limits = ServerLimits()
    limits.maxRequestLineBytes = 32
    limits.maxHeaderCount = 2
    limits.maxHeaderBytes = 64
    limits.maxBodyBytes = 8
    let longTarget = Self.failure(
      "GET /\(String(repeating: "a", count: 40)) HTTP/1.1\r\n\r\n", limits: limits)
    #expect(longTarget?.status == 431)
    #expect(longTarget?.message == "request target over 32 bytes")
    #expect(Self.failure("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)?.status == 431)
    #expect(
      Self.failure("GET / HTTP/1.1\r\nA: \(String(repeating: "v", count: 70))\r\n\r\n", limits: limits)?
        .status == 431)
    // A head that never ends is refused once it is over the caps, without waiting for more.
    #expect(
      Self.failure("GET / HTTP/1.1\r\nA: " + String(repeating: "v", count: 1000), limits: limits)?.status
        == 431)
    let body = Self.failure("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", limits: limits)
    #expect(body?.status == 413)
    #expect(body?.message == "request body over 8 bytes")
    let chunked = Self.failure(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n5\r\n", limits: limits)
    #expect(chunked?.status == 413)
  }

  @Test func theParserIsIdleOnlyBetweenRequests() throws {
    var parser = HTTP1RequestParser(limits: ServerLimits())
    #expect(parser.isIdle)
    let partial = Array("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab".utf8)
    let (request, consumed) = try partial.withUnsafeBytes { b in
      try parser.parse(b)
    }
    #expect(request == nil)
    #expect(consumed == partial.count)
    #expect(!parser.isIdle)
    let (rest, _) = try Array("cd".utf8).withUnsafeBytes { b in
      try parser.parse(b)
    }
    #expect(rest?.body == Array("abcd".utf8))
    #expect(parser.isIdle)
  }

  @Test func aFewEmptyLinesBeforeARequestAreConsumedNotKept() throws {
    // Four empty lines, even cut byte by byte, are skipped; each is consumed as it comes.
    for step in [1, 3, 64] {
      let r = try Self.parse("\r\n\n\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n", step: step)
      #expect(r.map(\.target) == ["/a", "/b"])
    }
    var parser = HTTP1RequestParser(limits: ServerLimits())
    let (request, consumed) = try Array("\r\n\r\nGE".utf8).withUnsafeBytes { b in try parser.parse(b) }
    #expect(request == nil)
    #expect(consumed == 4)
  }

  /// One `parse` call: the bytes consumed, or the refusal.
  static func feed(_ parser: inout HTTP1RequestParser, _ bytes: [UInt8]) -> Result<
    Int, HTTP1RequestParser.Failure
  > {
    bytes.withUnsafeBytes { b in
      do throws(HTTP1RequestParser.Failure) {
        return .success(try parser.parse(b).consumed)
      } catch {
        return .failure(error)
      }
    }
  }

  /// H1: a peer sending nothing but CR/LF used to have every byte kept and scanned again
  /// on each read. Now they are consumed as they come and more than a few get a 400.
  @Test func aFloodOfEmptyLinesIsRefusedWithoutBeingKept() {
    var parser = HTTP1RequestParser(limits: ServerLimits())
    let piece = (0..<4096).map { UInt8($0 % 2 == 0 ? 0x0D : 0x0A) }
    var retained: [UInt8] = []
    var largestRetained = 0
    var fed = 0
    var failure: HTTP1RequestParser.Failure?
    while fed < 1 << 20, failure == nil {
      retained += piece
      fed += piece.count
      largestRetained = max(largestRetained, retained.count)
      switch Self.feed(&parser, retained) {
      case .success(let consumed): retained.removeFirst(consumed)
      case .failure(let refusal): failure = refusal
      }
    }
    #expect(failure?.status == 400)
    #expect(failure?.message == "more than 4 empty lines before the request line")
    #expect(fed == piece.count, "refused at the first piece, not after \(fed) bytes")
    #expect(largestRetained <= piece.count)
    // Byte by byte: each is consumed, and the ninth CR/LF byte is refused.
    var slow = HTTP1RequestParser(limits: ServerLimits())
    var refusedAt: Int?
    for i in 0..<16 where refusedAt == nil {
      switch Self.feed(&slow, [UInt8(i % 2 == 0 ? 0x0D : 0x0A)]) {
      case .success(let consumed): #expect(consumed == 1)
      case .failure: refusedAt = i
      }
    }
    #expect(refusedAt == HTTP1RequestParser.maxEmptyLineBytes)
  }
}

import NIOCore
import NIOEmbedded
import NIOHTTP1
import TokenBrokerServer

/// The broker's own HTTP/1.1 request parser against SwiftNIO's decoder (llhttp) on the same
/// bytes. Whatever the broker's parser accepts, llhttp must read as the same requests: method,
/// target, version, header fields, body and whether the connection stays open. The broker's
/// parser may refuse more (its caps, obsolete forms); reading a request differently from a
/// mainstream parser is how requests are smuggled, so that is a bug.
enum HTTPDifferentialFuzzing {
  struct Parsed: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var minorVersion: Int
    var headers: [[String]]
    var body: [UInt8]
    var keepAlive: Bool

    var description: String {
      "\(method) \(target) HTTP/1.\(minorVersion) \(headers) body \(body.count) bytes keepAlive \(keepAlive)"
    }
  }

  static func run(_ input: [UInt8]) {
    let bytes = crlf(input)
    let (mine, used) = ours(bytes)
    guard !mine.isEmpty else { return }
    // Only the bytes of the requests compared: what follows them (a refused request, a
    // partial one) is not llhttp's to refuse here.
    let theirs = llhttp(Array(bytes[..<used]))
    for (i, request) in mine.enumerated() {
      guard i < theirs.count else {
        FuzzCheck.violated(
          "the broker's parser read request \(i + 1) (\(request)); llhttp refused it or read no such request",
          input: input)
      }
      guard theirs[i] == request else {
        FuzzCheck.violated(
          "request \(i + 1) read differently: the broker's parser \(request), llhttp \(theirs[i])",
          input: input)
      }
    }
  }

  /// Every bare LF made CRLF: the broker's parser takes a bare LF as a line end (RFC 9112 2.2
  /// lets a recipient), llhttp refuses it; both parsers read the same bytes, so everything else
  /// is still compared.
  static func crlf(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    for (i, b) in bytes.enumerated() {
      if b == 0x0A, i == 0 || bytes[i - 1] != 0x0D { out.append(0x0D) }
      out.append(b)
    }
    return out
  }

  /// The requests the broker's parser reads, in order, up to the first it refuses, the first
  /// that closes the connection, or the end of the bytes. A CONNECT or an Upgrade request ends
  /// the comparison (llhttp hands what follows it to a tunnel or another protocol), and so does
  /// a method llhttp does not know. `used`: the bytes those requests took.
  static func ours(_ bytes: [UInt8]) -> (requests: [Parsed], used: Int) {
    var parser = HTTP1RequestParser(limits: ServerLimits())
    var rest = bytes[...]
    var out: [Parsed] = []
    var used = 0
    var consumed = 0
    while !rest.isEmpty {
      let chunk = Array(rest)
      var step: (HTTP1RequestParser.Request?, consumed: Int)?
      chunk.withUnsafeBytes { raw in
        do throws(HTTP1RequestParser.Failure) {
          step = try parser.parse(raw)
        } catch {
          step = nil
        }
      }
      guard let step else { return (out, used) }
      rest = rest.dropFirst(step.consumed)
      consumed += step.consumed
      guard let r = step.0 else { return (out, used) }
      if r.method == "CONNECT" || r.headers.contains(where: { $0.0.lowercased() == "upgrade" }) {
        return (out, used)
      }
      // A method llhttp does not know (RFC 9110 lets a server take any token; the broker's API
      // answers 405): not compared.
      if case .RAW = HTTPMethod(rawValue: r.method) { return (out, used) }
      out.append(
        Parsed(
          method: r.method, target: r.target, minorVersion: r.minorVersion,
          headers: r.headers.map { [$0.0, $0.1] },
          body: r.body, keepAlive: r.keepAlive))
      used = consumed
      if !r.keepAlive { return (out, used) }
    }
    return (out, used)
  }

  /// A field value without the whitespace around it (RFC 9110 5.5: it is not part of the
  /// value), as the broker's parser reads it; SwiftNIO keeps a trailing tab.
  static func trimmed(_ value: String) -> String {
    var v = Substring(value)
    while let f = v.first, f == " " || f == "\t" { v = v.dropFirst() }
    while let l = v.last, l == " " || l == "\t" { v = v.dropLast() }
    return String(v)
  }

  /// The complete requests SwiftNIO's `HTTPRequestDecoder` reads from the bytes.
  static func llhttp(_ bytes: [UInt8]) -> [Parsed] {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    guard
      (try? channel.pipeline.syncOperations.addHandler(
        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))) != nil
    else { return [] }
    _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
    var out: [Parsed] = []
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
      switch part {
      case .head(let h):
        head = h
        body = []
      case .body(let b):
        body += b.readableBytesView
      case .end:
        guard let h = head else { continue }
        out.append(
          Parsed(
            method: h.method.rawValue, target: h.uri, minorVersion: h.version.minor,
            headers: h.headers.map { [$0.name, trimmed($0.value)] }, body: body, keepAlive: h.isKeepAlive))
        head = nil
      }
    }
    return out
  }
}

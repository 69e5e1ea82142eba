import NIOCore
import NIOHTTP1
import Testing

@testable import TokenBrokerServer

/// The bytes of an answer as the connection handler writes them: status line, fields,
/// length, the close marker and the body, for every shape the socket API produces.
struct ServerResponseEncodingTests {
  static func encoded(_ response: ServerResponse, keepAlive: Bool = true, includeBody: Bool = true) -> String
  {
    var out = ByteBufferAllocator().buffer(capacity: 0)
    response.encode(into: &out, keepAlive: keepAlive, includeBody: includeBody)
    return String(buffer: out)
  }

  @Test func aKeptAliveAnswerHasItsFieldsLengthAndBody() {
    let response = ServerResponse(
      status: .ok, headers: [("Cache-Control", "no-store")], body: Array(#"{"a":1}"#.utf8))
    #expect(
      Self.encoded(response)
        == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        + "Content-Length: 7\r\n\r\n{\"a\":1}")
  }

  @Test func theLastAnswerSaysTheConnectionCloses() {
    let response = ServerResponse(
      status: .serviceUnavailable, contentType: "text/plain", headers: [("Retry-After", "24")],
      body: Array("later\n".utf8))
    #expect(
      Self.encoded(response, keepAlive: false)
        == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 24\r\n"
        + "Content-Length: 6\r\nConnection: close\r\n\r\nlater\n")
  }

  @Test func anAnswerToHeadHasNeitherLengthNorBody() {
    let response = ServerResponse(status: .ok, body: Array("{}".utf8))
    #expect(
      Self.encoded(response, includeBody: false)
        == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
  }

  @Test func anEmptyBodyHasLengthZero() {
    let response = ServerResponse(status: .noContent, body: [])
    #expect(Self.encoded(response).hasSuffix("\r\nContent-Length: 0\r\n\r\n"))
  }

  @Test(arguments: [1, 9, 10, 99_999, 1_048_576])
  func theLengthIsTheBodysSizeInDecimal(size: Int) {
    let response = ServerResponse(status: .ok, body: [UInt8](repeating: 0x61, count: size))
    let text = Self.encoded(response)
    #expect(text.contains("\r\nContent-Length: \(size)\r\n\r\n"))
    let parts = text.split(separator: "\r\n\r\n", maxSplits: 1, omittingEmptySubsequences: false)
    #expect(parts.count == 2 && parts[1].utf8.count == size)
  }

  @Test func manyAndLongFieldsFitTheHead() {
    let fields = (0..<40).map { ("X-Field-\($0)", String(repeating: "v", count: 200 + $0)) }
    let response = ServerResponse(status: .ok, headers: fields, body: Array("x".utf8))
    let text = Self.encoded(response)
    for (name, value) in fields { #expect(text.contains("\r\n\(name): \(value)\r\n")) }
    #expect(text.hasSuffix("\r\nContent-Length: 1\r\n\r\nx"))
  }

  @Test func anAnswerIsAppendedAfterWhatTheBufferHolds() {
    var out = ByteBufferAllocator().buffer(capacity: 0)
    out.writeString("earlier")
    ServerResponse(status: .notFound, body: Array("{}".utf8)).encode(
      into: &out, keepAlive: true, includeBody: true)
    #expect(String(buffer: out).hasPrefix("earlierHTTP/1.1 404 Not Found\r\n"))
  }

  @Test(arguments: [true, false])
  func aPreparedHeadWritesWhatTheFieldsWould(keepAlive: Bool) {
    let head = PreparedHead(status: .ok, contentType: "text/plain", headers: [("Cache-Control", "no-store")])
    let body = Array("ak_test_1234".utf8)
    let prepared = ServerResponse(head, body: body)
    let plain = ServerResponse(
      status: .ok, contentType: "text/plain", headers: [("Cache-Control", "no-store")], body: body)
    #expect(Self.encoded(prepared, keepAlive: keepAlive) == Self.encoded(plain, keepAlive: keepAlive))
    #expect(Self.encoded(prepared, includeBody: false) == Self.encoded(plain, includeBody: false))
  }

  @Test func aPreparedResponseChangedAfterwardsIsWrittenAsChanged() {
    var response = ServerResponse(
      PreparedHead(status: .ok, headers: [("Cache-Control", "no-store")]), body: [])
    response.status = .serviceUnavailable
    response.headers.append(("Retry-After", "5"))
    #expect(
      Self.encoded(response)
        == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        + "Retry-After: 5\r\nContent-Length: 0\r\n\r\n")
  }
}

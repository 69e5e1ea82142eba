import NIOHTTP1
import TokenBrokerCore

/// One complete HTTP request as the broker's handlers see it.
package struct ServerRequest: Sendable {
  package var method: HTTPMethod
  /// The path without the query.
  package var path: Substring
  /// Decoded query parameters (last one wins).
  package var query: [String: String]
  package var headers: HTTPHeaders
  package var body: [UInt8]
  /// nil for TCP connections.
  package var peer: PeerCredentials?
  /// The query held a malformed escape or invalid UTF-8 (such parameters are left out).
  package var queryMalformed = false

  package init(
    method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
    peer: PeerCredentials? = nil
  ) {
    self.method = method
    self.headers = headers
    self.body = body
    self.peer = peer
    // Searched as bytes: a Character search walks grapheme clusters (this runs per request).
    if let q = Self.questionMark(in: uri) {
      self.path = uri[..<q]
      (self.query, self.queryMalformed) = Self.parseQuery(uri[uri.utf8.index(after: q)...])
    } else {
      self.path = Substring(uri)
      self.query = [:]
    }
  }

  /// Where the first `?` of `uri` is.
  static func questionMark(in uri: String) -> String.Index? {
    let offset = uri.utf8.withContiguousStorageIfAvailable {
      HTTP1RequestParser.firstIndex(of: UInt8(ascii: "?"), in: UnsafeRawBufferPointer($0))
    }
    guard let offset else { return uri.utf8.firstIndex(of: UInt8(ascii: "?")) }
    return offset.map { uri.utf8.index(uri.utf8.startIndex, offsetBy: $0) }
  }

  static func parseQuery(_ s: Substring) -> ([String: String], malformed: Bool) {
    var out: [String: String] = [:]
    var malformed = false
    for pair in s.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard let k = FormDecoding.decode(kv[0]), let v = kv.count > 1 ? FormDecoding.decode(kv[1]) : "" else {
        malformed = true
        continue
      }
      out[k] = v
    }
    return (out, malformed)
  }

  /// First value of a header, case-insensitive.
  package func header(_ name: String) -> String? { headers.first(name: name) }
}

/// The answer to a `ServerRequest`.
package struct ServerResponse: Sendable {
  package var status: HTTPResponseStatus { didSet { prepared = nil } }
  package var contentType: String { didSet { prepared = nil } }
  /// Header fields besides `Content-Type` and `Content-Length` (a shared constant where it can
  /// be: no array is made per answer).
  package var headers: [(String, String)] { didSet { prepared = nil } }
  package var body: [UInt8]
  /// The status line and fields above as bytes, when the response was made from a
  /// `PreparedHead` (and none of them changed since).
  private(set) var prepared: [UInt8]?

  package init(
    status: HTTPResponseStatus, contentType: String = "application/json", headers: [(String, String)] = [],
    body: [UInt8]
  ) {
    self.status = status
    self.contentType = contentType
    self.headers = headers
    self.body = body
  }

  /// A response with a head encoded once beforehand: writing it adds only `Content-Length`.
  package init(_ head: PreparedHead, body: [UInt8]) {
    self.init(status: head.status, contentType: head.contentType, headers: head.headers, body: body)
    prepared = head.bytes
  }
}

/// A response head (status line, `Content-Type`, fields) encoded once, for the answers the
/// socket makes over and over (a cached token): `ServerResponse(head, body:)`.
package struct PreparedHead: Sendable {
  package let status: HTTPResponseStatus
  package let contentType: String
  package let headers: [(String, String)]
  let bytes: [UInt8]

  package init(
    status: HTTPResponseStatus, contentType: String = "application/json", headers: [(String, String)] = []
  ) {
    self.status = status
    self.contentType = contentType
    self.headers = headers
    bytes = ServerResponse.encodedHead(status: status, contentType: contentType, headers: headers)
  }
}

package protocol ServerRequestHandler: Sendable {
  /// Answers without suspending when it can (a cached token): called on the
  /// event loop, so it must not block. Return nil to go through `handle`.
  func respondImmediately(to request: ServerRequest) -> ServerResponse?
  func handle(_ request: ServerRequest) async -> ServerResponse
}

extension ServerRequestHandler {
  package func respondImmediately(to request: ServerRequest) -> ServerResponse? { nil }
}

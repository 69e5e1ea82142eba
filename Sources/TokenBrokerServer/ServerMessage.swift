import NIOHTTP1

/// One complete HTTP request as the broker's handlers see it.
public struct ServerRequest: Sendable {
  public var method: HTTPMethod
  /// The path without the query.
  public var path: Substring
  /// Decoded query parameters (last one wins).
  public var query: [String: String]
  public var headers: HTTPHeaders
  public var body: [UInt8]
  /// nil for TCP connections.
  public var peer: PeerCredentials?
  /// The query held a malformed escape or invalid UTF-8 (such parameters are left out).
  public var queryMalformed = false

  public init(
    method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
    peer: PeerCredentials? = nil
  ) {
    self.method = method
    self.headers = headers
    self.body = body
    self.peer = peer
    if let q = uri.firstIndex(of: "?") {
      self.path = uri[..<q]
      (self.query, self.queryMalformed) = Self.parseQuery(uri[uri.index(after: q)...])
    } else {
      self.path = Substring(uri)
      self.query = [:]
    }
  }

  static func parseQuery(_ s: Substring) -> ([String: String], malformed: Bool) {
    var out: [String: String] = [:]
    var malformed = false
    for pair in s.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard let k = percentDecode(kv[0]), let v = kv.count > 1 ? percentDecode(kv[1]) : "" else {
        malformed = true
        continue
      }
      out[k] = v
    }
    return (out, malformed)
  }

  /// `%XX` and `+` decoding; nil on malformed escapes or invalid UTF-8.
  public static func percentDecode(_ s: Substring) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(s.utf8.count)
    var it = s.utf8.makeIterator()
    while let b = it.next() {
      switch b {
      case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
      case UInt8(ascii: "%"):
        guard let h = it.next(), let l = it.next(), let hi = HTTP1RequestParser.hexValue(h),
          let lo = HTTP1RequestParser.hexValue(l)
        else { return nil }
        bytes.append(hi << 4 | lo)
      default: bytes.append(b)
      }
    }
    return String(validating: bytes, as: UTF8.self)
  }

  /// First value of a header, case-insensitive.
  public func header(_ name: String) -> String? { headers.first(name: name) }
}

/// The answer to a `ServerRequest`.
public struct ServerResponse: Sendable {
  public var status: HTTPResponseStatus
  public var headers: [(String, String)]
  public var body: [UInt8]

  public init(
    status: HTTPResponseStatus, contentType: String = "application/json", headers: [(String, String)] = [],
    body: [UInt8]
  ) {
    self.status = status
    self.headers = [("Content-Type", contentType)] + headers
    self.body = body
  }
}

/// What the server calls for every request.
public protocol ServerRequestHandler: Sendable {
  /// Answers without suspending when it can (a cached token): called on the
  /// event loop, so it must not block. Return nil to go through `handle`.
  func respondImmediately(to request: ServerRequest) -> ServerResponse?
  func handle(_ request: ServerRequest) async -> ServerResponse
}

extension ServerRequestHandler {
  public func respondImmediately(to request: ServerRequest) -> ServerResponse? { nil }
}

import TokenBrokerJSON

#if canImport(Glibc)
  import Glibc
#endif

/// Input caps and deadlines of the socket server (ssh-agent style: everything bounded).
package struct ServerLimits: Sendable, Equatable {
  /// Largest request body accepted (413 above).
  package var maxBodyBytes: Int = 16 * 1024
  /// Longest request target (path and query) accepted (431 above).
  package var maxRequestLineBytes: Int = 8 * 1024
  /// Largest total of header names and values (431 above).
  package var maxHeaderBytes: Int = 16 * 1024
  package var maxHeaderCount: Int = 64
  /// Seconds a client has to send a whole request once it started one (408 after).
  package var requestDeadline: Double = 10
  /// Seconds an open connection may sit without a request before it is closed.
  package var idleTimeout: Double = 60
  /// Connections served at once; excess ones get a 503 and are closed. The daemon raises
  /// its open-file limit to fit them.
  package var maxConnections: Int = 4096
  /// Connections one uid may hold at once, so that one client cannot take every slot;
  /// excess ones get the same 503. Uids in `exemptUIDs` are not counted per uid.
  package var maxConnectionsPerUID: Int = 64
  /// Uids without a per-uid cap: root and the daemon's own effective uid.
  package var exemptUIDs: Set<UInt32> = [0, UInt32(geteuid())]

  package init() {}
}

/// The broker's error body: `{"error":{"code","message"}}`.
package enum ErrorBody {
  package static func json(code: String, message: String) -> [UInt8] {
    var out = Array(#"{"error":{"code":"#.utf8)
    appendJSONString(code, to: &out)
    out += Array(#","message":"#.utf8)
    appendJSONString(message, to: &out)
    out += Array("}}\n".utf8)
    return out
  }

  /// A whole HTTP/1.1 error response that closes the connection, for answers
  /// written below the HTTP codec (timeouts, connection limit).
  package static func rawResponse(
    status: Int, reason: String, code: String, message: String, extraHeaders: String = ""
  ) -> [UInt8] {
    let body = json(code: code, message: message)
    let head =
      "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
      + extraHeaders + "Connection: close\r\n\r\n"
    return Array(head.utf8) + body
  }

  /// `s` as a JSON string, through the broker's one escaper. Control characters other than
  /// a line feed become spaces first: a message may carry a client's own bytes (a provider
  /// name), and a client prints it to a terminal.
  static func appendJSONString(_ s: String, to out: inout [UInt8]) {
    let printable = String(
      String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 && $0 != "\n" ? " " : $0 }))
    JSONWriter.appendString(printable, to: &out)
  }
}

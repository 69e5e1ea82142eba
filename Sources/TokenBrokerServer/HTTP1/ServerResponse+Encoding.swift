import NIOCore

extension ServerResponse {
  /// The whole answer as HTTP/1.1 bytes: status line, the response's own header fields,
  /// `Content-Length`, `Connection: close` when the connection ends, then the body. An
  /// answer to HEAD has neither body nor length (RFC 9110 9.3.2 allows leaving it out).
  func encode(into out: inout ByteBuffer, keepAlive: Bool, includeBody: Bool) {
    out.writeStaticString("HTTP/1.1 ")
    out.writeString(String(status.code))
    out.writeInteger(UInt8(ascii: " "))
    out.writeString(status.reasonPhrase)
    out.writeStaticString("\r\nContent-Type: ")
    out.writeString(contentType)
    out.writeStaticString("\r\n")
    for (name, value) in headers {
      out.writeString(name)
      out.writeStaticString(": ")
      out.writeString(value)
      out.writeStaticString("\r\n")
    }
    if includeBody {
      out.writeStaticString("Content-Length: ")
      out.writeString(String(body.count))
      out.writeStaticString("\r\n")
    }
    out.writeStaticString(keepAlive ? "\r\n" : "Connection: close\r\n\r\n")
    if includeBody { out.writeBytes(body) }
  }
}

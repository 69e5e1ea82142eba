import Foundation
import Testing
import TokenBrokerClient
import TokenBrokerTestSupport

/// The socket client's request body and per-request read deadline (README "tokenctl").
@Suite struct UnixHTTPClientTests {
  @Test func aJSONBodyIsSentWithItsTypeAndLength() async throws {
    let daemon = try FakeDaemon { r in (200, #"{"echo":\#(r.body)}"#) }
    let body = Array(#"{"method":"device"}"#.utf8)
    let path = daemon.path
    let response = try await offload {
      try UnixHTTPClient(socketPath: path).request("POST", "/v1/providers/p/login", body: body)
    }
    #expect(response.status == 200)
    #expect(response.text == #"{"echo":{"method":"device"}}"#)
    #expect(
      daemon.requests == [
        .init(method: "POST", target: "/v1/providers/p/login", body: #"{"method":"device"}"#)
      ])
  }

  /// `timeout:` replaces the client's read deadline for one request (a `?wait=S` needs more
  /// than S): a daemon that never answers is given up on after that many seconds.
  @Test func theReadDeadlineIsPerRequest() async throws {
    let directory = try TempDirectory("tb-mute")
    let path = directory.file("s.sock")
    let fd = try UnixSocketAddress.boundSocket(type: Int32(SOCK_STREAM.rawValue), path: path)
    defer { close(fd) }
    #expect(listen(fd, 4) == 0)  // never accepted: the request is queued, no answer comes
    let outcome = try await offload { () -> String in
      do {
        _ = try UnixHTTPClient(socketPath: path).request("GET", "/v1/providers/p/login?wait=30", timeout: 1)
        return "answered"
      } catch UnixHTTPClient.Failure.protocolError(let message) {
        return message
      } catch {
        return "\(error)"
      }
    }
    #expect(outcome == "no answer within 1 s")
  }
}

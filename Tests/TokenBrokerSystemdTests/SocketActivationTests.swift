import Glibc
import Testing
import TokenBrokerTestSupport

@testable import TokenBrokerSystemd

extension SystemdSuite {
  @Suite("SocketActivation") struct SocketActivationTests {
    private var stream: Int32 { Int32(SOCK_STREAM.rawValue) }

    @Test func noDescriptorsWithoutListenFds() {
      withEnvironment(["LISTEN_FDS": nil, "LISTEN_PID": nil]) {
        #expect(SocketActivation.listenFileDescriptors().isEmpty)
        #expect((try? SocketActivation.inheritedListeningSocket()) == .some(nil))
      }
    }

    /// `LISTEN_PID` of this process but no `LISTEN_FDS`: nothing passed, as sd_listen_fds says.
    @Test func noDescriptorsWithAPidButNoCount() throws {
      try withEnvironment(["LISTEN_FDS": nil, "LISTEN_PID": String(getpid())]) { () throws in
        #expect(try SocketActivation.checkedListenFileDescriptors().isEmpty)
      }
    }

    @Test func ignoresDescriptorsMeantForAnotherProcess() {
      withEnvironment(["LISTEN_FDS": "1", "LISTEN_PID": String(getpid() + 1)]) {
        #expect(SocketActivation.listenFileDescriptors().isEmpty)
      }
    }

    @Test func reportsMalformedListenFds() {
      withEnvironment(["LISTEN_FDS": "one", "LISTEN_PID": String(getpid())]) {
        #expect(SocketActivation.listenFileDescriptors().isEmpty)
        #expect(throws: SocketActivationError.invalidEnvironment(errno: EINVAL)) {
          try SocketActivation.checkedListenFileDescriptors()
        }
      }
    }

    /// A real listening socket passed the way systemd does. fd 3 is usually taken in a test
    /// process (libdispatch's epoll), so the socket is duplicated onto the lowest free
    /// descriptor ≥ 3 and `LISTEN_FDS` covers 3 through it: the descriptors below it are open
    /// (that is what "lowest free" means), as systemd passes them.
    @Test func returnsTheDescriptorsFromThree() async throws {
      let directory = try TempDirectory("tbsd")
      let listener = try UnixSocket(type: stream, path: directory.path + "/s", listen: 8)
      // Tests of other targets in the same process may close one of the descriptors below ours
      // between fcntl and reading $LISTEN_FDS (then EBADF), and while every suite starts they
      // do so for a while (20 tries in a row failed in CI): try again until a quiet moment,
      // a bounded number of times.
      var outcome: (fd: Int32, fds: [Int32])?
      var last = ""
      for attempt in 0..<1000 where outcome == nil {
        if attempt > 0 { try await Task.sleep(for: .milliseconds(5)) }
        let fd = fcntl(listener.fd, F_DUPFD_CLOEXEC, SocketActivation.firstFileDescriptor)
        try #require(fd >= 3)
        let fds = withEnvironment(["LISTEN_FDS": String(fd - 2), "LISTEN_PID": String(getpid())]) {
          Result { () throws(SocketActivationError) -> [Int32] in
            try SocketActivation.checkedListenFileDescriptors()
          }
        }
        switch fds {
        case .success(let fds) where SocketActivation.isListeningUnixStreamSocket(fd):
          outcome = (fd, fds)
        case .success:
          last = "fd \(fd) is no listening socket"
          close(fd)
        case .failure(let error):
          last = "\(error)"
          close(fd)
        }
      }
      let (fd, fds) = try #require(outcome, "sd_listen_fds kept failing; the last time: \(last)")
      defer { close(fd) }
      #expect(fds == Array(3...fd))
      #expect(fds.last.map(SocketActivation.isListeningUnixStreamSocket) == true)
      #expect(throws: Never.self) { try SocketActivation.validateListeningUnixStreamSocket(fd) }
    }

    /// `LISTEN_FDS=1`: fd 3 is either free (then our socket goes there and is adopted) or held
    /// by something that is not a listening Unix socket (then adoption must refuse it).
    @Test func inheritedListeningSocketAdoptsOrRefusesFdThree() throws {
      let directory = try TempDirectory("tbsd")
      let listener = try UnixSocket(type: stream, path: directory.path + "/s", listen: 8)
      let fd = fcntl(listener.fd, F_DUPFD_CLOEXEC, 3)
      try #require(fd >= 3)
      defer { close(fd) }
      try withEnvironment(["LISTEN_FDS": "1", "LISTEN_PID": String(getpid())]) { () throws in
        if fd == 3 {
          #expect(try SocketActivation.inheritedListeningSocket() == 3)
        } else {
          #expect(!SocketActivation.isListeningUnixStreamSocket(3))
          #expect(throws: SocketActivationError.notAListeningUnixStreamSocket(fd: 3)) {
            try SocketActivation.inheritedListeningSocket()
          }
        }
      }
    }

    @Test func acceptsOnlyListeningUnixStreamSockets() throws {
      let directory = try TempDirectory("tbsd")
      let listening = try UnixSocket(type: stream, path: directory.path + "/l", listen: 8)
      let boundOnly = try UnixSocket(type: stream, path: directory.path + "/b")
      let datagram = try UnixSocket(type: Int32(SOCK_DGRAM.rawValue), path: directory.path + "/d")
      var pipeEnds: [Int32] = [0, 0]
      try #require(pipe(&pipeEnds) == 0)
      defer { pipeEnds.forEach { close($0) } }
      let inet = socket(AF_INET, stream, 0)
      defer { close(inet) }
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
      let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(inet, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      try #require(bound == 0 && listen(inet, 1) == 0)

      #expect(SocketActivation.isListeningUnixStreamSocket(listening.fd))
      #expect(throws: Never.self) { try SocketActivation.validateListeningUnixStreamSocket(listening.fd) }
      for fd in [boundOnly.fd, datagram.fd, pipeEnds[0], inet, 9999] {
        #expect(!SocketActivation.isListeningUnixStreamSocket(fd), "fd \(fd)")
        #expect(throws: SocketActivationError.notAListeningUnixStreamSocket(fd: fd)) {
          try SocketActivation.validateListeningUnixStreamSocket(fd)
        }
      }
    }

    @Test func errorsSayWhatIsWrong() {
      let text = SocketActivationError.notAListeningUnixStreamSocket(fd: 3).description
      #expect(text.contains("fd 3") && text.contains("listening Unix stream socket"))
      #expect(SocketActivationError.unexpectedCount(2).description.contains("2"))
    }
  }
}

import Testing
import TokenBrokerCore

@Suite struct UIDMapTests {
  @Test func initialNamespaceIsIdentity() {
    #expect(UIDMap.isIdentity("         0          0 4294967295\n"))
  }

  @Test(arguments: [
    "         0     100000      65536\n", "0 0 65536\n", "0 0 4294967295\n1 2 3\n", "", "garbage",
  ])
  func anyOtherMapIsRefused(_ text: String) {
    #expect(!UIDMap.isIdentity(text))
  }
}

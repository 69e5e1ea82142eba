import Testing

@testable import TokenBrokerCore

/// 2015-10-21T07:28:00Z.
private let instant: Double = 1_445_412_480

@Suite struct RetryAfterTests {
  @Test(arguments: [("120", 120.0), ("0", 0), ("1", 1), (" 30 ", 30), ("86400", 86400)])
  func deltaSeconds(_ text: String, _ expected: Double) {
    #expect(RetryAfter.seconds(text, now: 1_700_000_000) == expected)
  }

  @Test(arguments: ["-1", "-120", "", " ", "soon", "1.5", "120s", "0x10", "Wed, 99 Foo 2015 07:28:00 GMT"])
  func unparseableIsNil(_ text: String) {
    #expect(RetryAfter.seconds(text, now: instant) == nil)
  }

  @Test func imfFixdateRelativeToNow() {
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT", now: instant - 30) == 30)
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT", now: instant - 3600) == 3600)
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT", now: instant) == 0)
  }

  @Test func imfFixdateWithFractionalNow() {
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT", now: instant - 2.5) == 2.5)
  }

  @Test func dateInThePastIsZero() {
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT", now: instant + 100) == 0)
    #expect(RetryAfter.seconds("Thu, 01 Jan 1970 00:00:00 GMT", now: instant) == 0)
  }

  @Test func rfc850Date() {
    #expect(RetryAfter.seconds("Wednesday, 21-Oct-15 07:28:00 GMT", now: instant - 30) == 30)
  }

  @Test func asctimeDate() {
    #expect(RetryAfter.seconds("Wed Oct 21 07:28:00 2015", now: instant - 30) == 30)
  }
}

extension RetryAfterTests {
  /// Found by fuzzing: a non-ASCII date made Foundation's DateFormatter trap (the daemon
  /// would have died on an upstream's 503); it is now unparseable, so no Retry-After.
  @Test func nonASCIIDateIsUnparseableNotFatal() {
    #expect(RetryAfter.seconds(" Wednesday, 21-Oct-27\u{7AD}i\u{0}7:2VG8:00 GMT", now: instant) == nil)
    #expect(RetryAfter.seconds("Wed, 21 Oct 2015 07:28:00 GMT\u{A0}", now: instant) == nil)
  }

  @Test func tabsAroundAreTrimmed() {
    #expect(RetryAfter.seconds("\t7\t", now: instant) == 7)
    #expect(RetryAfter.seconds("\tWed, 21 Oct 2015 07:28:00 GMT ", now: instant - 1) == 1)
  }
}

import Testing

@testable import TokenBrokerCore

@Suite struct HTTPDateTests {
  /// RFC 9110 §5.6.7's own example in its three forms: 1994-11-06T08:49:37Z.
  @Test(arguments: [
    "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
  ])
  func theThreeFormsOfOneInstant(_ text: String) {
    #expect(HTTPDate.secondsSince1970(text) == 784_111_777)
  }

  @Test func epochLeapDayAndTwoDigitYears() {
    #expect(HTTPDate.secondsSince1970("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
    #expect(HTTPDate.secondsSince1970("Tue, 29 Feb 2000 23:59:59 GMT") == 951_868_799)
    #expect(HTTPDate.secondsSince1970("Wednesday, 21-Oct-15 07:28:00 GMT") == 1_445_412_480)
    #expect(HTTPDate.secondsSince1970("Thursday, 01-Jan-70 00:00:00 GMT") == 0)
    #expect(HTTPDate.secondsSince1970("Wed Oct 21 07:28:00 2015") == 1_445_412_480)
  }

  @Test func daysFromCivilAgreesAcrossEras() {
    #expect(HTTPDate.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
    #expect(HTTPDate.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
    #expect(HTTPDate.daysFromCivil(year: 1969, month: 12, day: 31) == -1)
    #expect(HTTPDate.daysFromCivil(year: 9999, month: 12, day: 31) == 2_932_896)
  }

  @Test(arguments: [
    "", "Sun, 06 Nov 1994 08:49:37 UTC", "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
    "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
    "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
    "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Nov 1994 08-49-37 GMT", "Sun, 06 Nov 1994 08:49:3x GMT",
    "Sun, 06 Nov -994 08:49:37 GMT", "Sunday, 06 Nov 1994 08:49:37 GMT", "Sun, 06-Nov-94 08:49:37 GMT",
    "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 06 08:49:37 94", "Sun Nov  6 08:49:37 1994 ",
    // found by fuzzing: Foundation's DateFormatter trapped on this (a fatal range error)
    "Wednesday, 21-Oct-27\u{7AD}i\u{0}7:2VG8:00 GMT", "Wednesday, 21-Oct-27 0\u{7AD}:28:00 GMT",
  ])
  func notAnHTTPDate(_ text: String) {
    #expect(HTTPDate.secondsSince1970(text) == nil)
  }
}

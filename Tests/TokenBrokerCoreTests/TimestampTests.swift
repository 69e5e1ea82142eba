import Testing

@testable import TokenBrokerCore

@Suite struct TimestampTests {
  @Test(arguments: [
    (0.0, "1970-01-01T00:00:00Z"),
    (951_782_400, "2000-02-29T00:00:00Z"),
    (1_800_000_000, "2027-01-15T08:00:00Z"),
    (1_709_164_800, "2024-02-29T00:00:00Z"),
    (1_234_567_890, "2009-02-13T23:31:30Z"),
    (978_307_200, "2001-01-01T00:00:00Z"),
    (4_102_444_800, "2100-01-01T00:00:00Z"),
    (86_399, "1970-01-01T23:59:59Z"),
    (86_400, "1970-01-02T00:00:00Z"),
    (253_402_300_799, "9999-12-31T23:59:59Z"),
    (-1, "1969-12-31T23:59:59Z"),
  ])
  func rfc3339(_ seconds: Double, _ expected: String) {
    #expect(Timestamp.rfc3339(seconds) == expected)
  }

  @Test func fractionalSecondsRoundDown() {
    #expect(Timestamp.rfc3339(1_800_000_000.999) == "2027-01-15T08:00:00Z")
    #expect(Timestamp.rfc3339(1_800_000_000.5) == "2027-01-15T08:00:00Z")
    #expect(Timestamp.rfc3339(59.9) == "1970-01-01T00:00:59Z")
    #expect(Timestamp.rfc3339(-0.5) == "1969-12-31T23:59:59Z")
  }
}

import Foundation

/// Small helpers over `JSONSerialization` for the loosely typed upstream answers.
enum JSONValue {
  static func parseObject(_ bytes: [UInt8]) -> [String: Any]? {
    guard let any = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
      return nil
    }
    return any as? [String: Any]
  }

  private static let booleanType = type(of: NSNumber(value: true))

  static func isBoolean(_ n: NSNumber) -> Bool {
    type(of: n) == booleanType
  }

  /// A number, or a string holding one (`"3600"`).
  static func number(_ value: Any?) -> Double? {
    switch value {
    case let n as NSNumber:
      // JSON true/false also arrive as NSNumber: a boolean is not a number.
      if isBoolean(n) { return nil }
      return n.doubleValue
    case let s as String:
      return Double(s.trimmingCharacters(in: .whitespaces))
    default:
      return nil
    }
  }
}

/// An entry of an `allow` or `admins` list.
package enum Principal: Sendable, Equatable, Hashable, CustomStringConvertible {
  case user(String)
  case group(String)
  case uid(UInt32)
  case gid(UInt32)

  /// Parses `user:NAME`, `group:NAME`, `uid:N`, `gid:N`.
  package init?(parsing text: String) {
    guard let colon = text.firstIndex(of: ":") else { return nil }
    let kind = text[..<colon]
    let value = String(text[text.index(after: colon)...])
    guard !value.isEmpty else { return nil }
    switch kind {
    case "user": self = .user(value)
    case "group": self = .group(value)
    case "uid":
      guard let n = UInt32(value) else { return nil }
      self = .uid(n)
    case "gid":
      guard let n = UInt32(value) else { return nil }
      self = .gid(n)
    default: return nil
    }
  }

  package var description: String {
    switch self {
    case .user(let n): return "user:\(n)"
    case .group(let n): return "group:\(n)"
    case .uid(let n): return "uid:\(n)"
    case .gid(let n): return "gid:\(n)"
    }
  }
}

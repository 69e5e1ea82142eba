/// Input caps of the socket server (ssh-agent style: bounded everything).
public struct ServerLimits: Sendable, Equatable {
  /// Largest request body accepted (413 above).
  public var maxBodyBytes: Int = 16 * 1024
  public init() {}
}

/// The broker's error body: `{"error":{"code","message"}}`.
public enum ErrorBody {
  public static func json(code: String, message: String) -> [UInt8] {
    var out = Array(#"{"error":{"code":"#.utf8)
    appendJSONString(code, to: &out)
    out += Array(#","message":"#.utf8)
    appendJSONString(message, to: &out)
    out += Array("}}\n".utf8)
    return out
  }

  static func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += [0x5C, 0x22]
      case "\\": out += [0x5C, 0x5C]
      case "\n": out += [0x5C, UInt8(ascii: "n")]
      default:
        if scalar.value < 0x20 { out += Array(" ".utf8) } else { out += Array(String(scalar).utf8) }
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}

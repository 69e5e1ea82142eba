import Logging

/// syslog priorities (`PRIORITY=` in the journal, the `<N>` prefix on stderr).
package enum SyslogPriority {
  /// swift-log level to syslog priority: trace 7, debug 7, info 6, notice 5, warning 4,
  /// error 3, critical 2.
  package static func of(_ level: Logger.Level) -> Int {
    switch level {
    case .trace, .debug: return 7
    case .info: return 6
    case .notice: return 5
    case .warning: return 4
    case .error: return 3
    case .critical: return 2
    }
  }
}

/// The fixed `MESSAGE_ID=` of each kind of event the broker logs (metadata key `event`), so
/// that `journalctl MESSAGE_ID=...` finds every occurrence whatever the wording of the message.
package enum JournalMessageID {
  /// Every known event with its 128-bit id (32 lowercase hex digits), in a stable order.
  package static let all: [(event: String, id: String)] = [
    ("started", "4b85d885c4ab4497b4948985601f0137"),
    ("stopping", "0e6564a05ac94836ba2af9e3f4b53c6b"),
    ("refreshed", "acfc5bac1cf04087b04d131567e37984"),
    ("refresh_failed", "84289fcba9044970b95bd1f7f5486259"),
    ("needs_login", "8e4dadb8e7ee4ea1a825c8c478a58916"),
    ("served", "e6343ca70e2f41449d19050476d60a65"),
    ("denied", "5ec7fa88eb7b46ada0ab8eb889db8fe4"),
    ("reloaded", "333380a1a59646afae3857eb05e7f48d"),
    ("reload_failed", "e7c8bc9b46dc4becbdf66a2f0ac8d689"),
    ("state_saved", "72cda6209a0f4fad8542ebb3736a5cd7"),
  ]

  private static let table: [String: String] = Dictionary(
    uniqueKeysWithValues: all.map { ($0.event, $0.id) })

  /// The id of `event`, or nil for an event not in the table (such entries get no MESSAGE_ID).
  package static func `for`(event: String) -> String? {
    table[event]
  }
}

/// How logger metadata keys become journal field names.
package enum JournalFieldName {
  /// Prefix of every field the broker adds.
  package static let prefix = "TOKEN_BROKER_"

  /// Journal field names are at most 64 characters.
  package static let maximumLength = 64

  /// `provider` -> `TOKEN_BROKER_PROVIDER`, `request_id` -> `TOKEN_BROKER_REQUEST_ID`, any other
  /// key `k` -> `TOKEN_BROKER_` + `k` uppercased, with every character outside `[A-Z0-9_]`
  /// turned into `_`; cut to 64 characters.
  package static func forMetadataKey(_ key: String) -> String {
    var name = prefix
    for scalar in key.unicodeScalars {
      switch scalar {
      case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
      case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
      default: name.append("_")
      }
    }
    if name.utf8.count > maximumLength {
      name = String(name.prefix(maximumLength))
    }
    return name
  }
}

/// One `NAME=value` pair of a journal entry.
package struct JournalField: Sendable, Equatable, CustomStringConvertible {
  package var name: String
  package var value: String

  package init(_ name: String, _ value: String) {
    self.name = name
    self.value = value
  }

  package var description: String { "\(name)=\(value)" }
}

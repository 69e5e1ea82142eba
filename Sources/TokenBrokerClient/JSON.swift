// The client's answers are read with the shared Foundation-free reader; importing the
// client is enough to use it.
@_exported import TokenBrokerJSON

/// The reader's name before it moved to TokenBrokerJSON (kept for code not yet switched:
/// `Sources/token-broker-reliability`).
public typealias MiniJSON = JSONValue

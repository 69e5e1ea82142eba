import Logging
import TokenBrokerCore
import TokenBrokerEngine
import TokenBrokerSystemd

/// Tokens across a restart (README "Restarts and upgrades"): a graceful stop keeps every token
/// still servable in systemd's file-descriptor store (a sealed memfd, `FileDescriptorStoreMax=`
/// in the shipped unit); the next start takes them back, so the clients of a restarted or
/// upgraded daemon are served without a request upstream. Outside systemd nothing is kept.
extension Daemon {
  /// What the previous run kept, if anything usable; dropped from the store either way.
  func takeHandover() async -> TokenHandover? {
    guard notifier.isEnabled else { return nil }
    let taken = await BlockingIO.run { () -> Result<[UInt8]?, FileDescriptorStore.Failure> in
      Result { () throws(FileDescriptorStore.Failure) -> [UInt8]? in
        try FileDescriptorStore.take(name: FileDescriptorStore.handoverName, maxBytes: TokenHandover.maxBytes)
      }
    }
    do {
      guard let bytes = try taken.get() else { return nil }
      let handover = try TokenHandover.decode(bytes)
      logger.info(
        "the previous run kept \(handover.entries.count) token\(handover.entries.count == 1 ? "" : "s") in systemd's file descriptor store",
        metadata: ["event": "handover_found"])
      return handover
    } catch {
      logger.warning(
        "the tokens kept by the previous run cannot be used (\(error)); every provider fetches anew",
        metadata: ["event": "handover_refused"])
      return nil
    }
  }

  /// Keeps the tokens still servable for the next run (after the engines settled).
  func keepHandover(_ broker: Broker) async {
    guard notifier.isEnabled else { return }
    let handover = await broker.handover()
    guard !handover.entries.isEmpty else { return }
    let bytes = handover.encoded()
    let kept = await BlockingIO.run { () -> Result<SystemdNotifier.Outcome, FileDescriptorStore.Failure> in
      Result { () throws(FileDescriptorStore.Failure) -> SystemdNotifier.Outcome in
        try FileDescriptorStore.keep(bytes, name: FileDescriptorStore.handoverName)
      }
    }
    switch kept {
    case .success(.sent):
      logger.info(
        "\(handover.entries.count) token\(handover.entries.count == 1 ? "" : "s") kept in systemd's file descriptor store for the next start",
        metadata: ["event": "handover_kept"])
    case .success(let other):
      logger.warning(
        "cannot keep the tokens for the next start (\(other)); it fetches anew",
        metadata: ["event": "handover_failed"])
    case .failure(let error):
      logger.warning(
        "cannot keep the tokens for the next start (\(error)); it fetches anew",
        metadata: ["event": "handover_failed"])
    }
  }
}

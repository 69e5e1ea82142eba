import Foundation
import TokenBrokerAPI
import TokenBrokerEngine
import TokenBrokerJSON

/// The state-file loader on arbitrary bytes.
enum StateFuzzing {
  /// A scratch state dir, on tmpfs when there is one (fsync there costs nothing).
  static let store: StateStore = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = base + "/tb-fuzz-statefile-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return StateStore(directory: dir)
  }()

  static func run(_ bytes: [UInt8]) {
    let record: ProviderStateRecord
    do {
      record = try StateStore.decode(bytes, file: "/var/lib/token-broker/fuzz.state")
    } catch {
      if !error.description.contains("/var/lib/token-broker/fuzz.state") {
        FuzzCheck.violated("the error does not name the file: \(error.description)", input: bytes)
      }
      if let token = refreshToken(in: bytes), token.count >= 4, error.description.contains(token),
        !refusalOfNonJSON.contains(token)
      {
        FuzzCheck.violated("the refresh token appears in the error", input: bytes)
      }
      return
    }
    if let token = record.refreshToken, token.count >= 4, record.description.contains(token) {
      // A token that is part of the description's own words ("refresh_toke") is not a leak:
      // it is one only when the description changes with the token.
      var other = record
      other.refreshToken = "\u{1}"
      if !other.description.contains(token) {
        FuzzCheck.violated("the refresh token appears in the description", input: bytes)
      }
    }
    // What the daemon writes back must read back the same (the time is the daemon's own clock).
    var written = record
    written.updatedAt = 1_800_000_000
    do {
      try store.save(written, for: "fuzz")
      guard let reread = try store.load("fuzz") else {
        FuzzCheck.violated("a saved state file is gone", input: bytes)
      }
      if reread != written {
        FuzzCheck.violated("state does not survive save and load: \(written) became \(reread)", input: bytes)
      }
    } catch {
      FuzzCheck.violated("cannot save and load a decoded record: \(error)", input: bytes)
    }
  }

  /// The loader's words for a file that is not JSON at all: a token found in them (say
  /// "state file") is not a leak.
  private static let refusalOfNonJSON: String = {
    do {
      _ = try StateStore.decode([0xFF], file: "/var/lib/token-broker/fuzz.state")
      return ""
    } catch {
      return String(describing: error)
    }
  }()

  private static func refreshToken(in bytes: [UInt8]) -> String? {
    JSONValue.parse(bytes)?["refresh_token"]?.string
  }
}

import Foundation
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// How the executables are linked: the daemon carries the Swift runtime inside and links no
  /// Foundation and no libsystemd (only the pages it touches become resident: the RSS goal in
  /// README "Performance" rests on it) and tokenctl is fully static (no dynamic loader at start).
  @Suite("Linkage") struct LinkageTests {
    /// What `ldd` prints for `binary`, stdout and stderr.
    static func ldd(_ binary: String) throws -> String {
      let r = try runToEnd("/usr/bin/ldd", [binary])
      return r.stdout + r.stderr
    }

    @Test func daemonLoadsNoSwiftFoundationOrSystemdLibrary() throws {
      let out = try Self.ldd(try BuiltBinaries.tokenBrokerd)
      let libs = out.split(separator: "\n").map {
        String($0.drop(while: { $0 == " " || $0 == "\t" }).prefix(while: { $0 != " " }))
      }
      #expect(libs.contains { $0.hasPrefix("libc.so") }, "\(out)")
      // The service manager's protocols are spoken directly (CSystemdProtocol), so neither
      // libsystemd nor what it loads (libgcrypt, liblz4, libzstd, liblzma, libcap) is mapped.
      #expect(!libs.contains { $0.hasPrefix("libsystemd") || $0.hasPrefix("libgcrypt") }, "\(out)")
      let swift = libs.filter {
        $0.contains("swift") || $0.contains("Foundation") || $0.contains("dispatch")
          || $0.contains("BlocksRuntime")
      }
      #expect(swift.isEmpty, "token-brokerd loads \(swift): the static-stdlib link in Package.swift is lost")
    }

    /// Nothing in the daemon imports Foundation, not even FoundationEssentials, so neither
    /// Foundation nor ICU and its 36 MB of data are linked in.
    @Test func daemonCarriesNoFoundationAndNoICU() throws {
      let bytes = try #require(FileManager.default.contents(atPath: try BuiltBinaries.tokenBrokerd))
      #expect(bytes.firstRange(of: Array("icudt".utf8)) == nil, "ICU's data is linked into token-brokerd")
      // No symbol of FoundationEssentials (Swift mangles its names with the module's, `$s20FoundationEssentials`).
      let symbols = try runToEnd("/usr/bin/nm", ["--defined-only", try BuiltBinaries.tokenBrokerd]).stdout
      #expect(!symbols.isEmpty)
      #expect(
        !symbols.contains("$s20FoundationEssentials"), "FoundationEssentials is linked into token-brokerd")
    }

    @Test func tokenctlIsStatic() throws {
      let out = try Self.ldd(try BuiltBinaries.path("tokenctl"))
      #expect(out.contains("not a dynamic executable"), "tokenctl is dynamic: \(out)")
    }
  }
}

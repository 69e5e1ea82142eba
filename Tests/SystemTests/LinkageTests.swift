import Foundation
import Testing
import TokenBrokerTestSupport

extension SystemSuite {
  /// How the executables are linked: the daemon carries the Swift runtime and
  /// FoundationEssentials inside (only the pages it touches become resident: the RSS goal in README
  /// "Performance" rests on it) and tokenctl is fully static (no dynamic loader at start).
  @Suite("Linkage") struct LinkageTests {
    /// What `ldd` prints for `binary`, stdout and stderr.
    static func ldd(_ binary: String) throws -> String {
      let r = try runToEnd("/usr/bin/ldd", [binary])
      return r.stdout + r.stderr
    }

    @Test func daemonLoadsNoSwiftOrFoundationLibrary() throws {
      let out = try Self.ldd(try BuiltBinaries.tokenBrokerd)
      let libs = out.split(separator: "\n").map {
        String($0.drop(while: { $0 == " " || $0 == "\t" }).prefix(while: { $0 != " " }))
      }
      #expect(libs.contains { $0.hasPrefix("libsystemd.so") }, "\(out)")
      let swift = libs.filter {
        $0.contains("swift") || $0.contains("Foundation") || $0.contains("dispatch")
          || $0.contains("BlocksRuntime")
      }
      #expect(swift.isEmpty, "token-brokerd loads \(swift): the static-stdlib link in Package.swift is lost")
    }

    /// Nothing in the daemon imports Foundation itself (FoundationEssentials only), so neither
    /// Foundation's internationalisation nor ICU and its 36 MB of data are linked in.
    @Test func daemonCarriesNoICU() throws {
      let bytes = try #require(FileManager.default.contents(atPath: try BuiltBinaries.tokenBrokerd))
      let icuData = Array("icudt".utf8)
      #expect(bytes.firstRange(of: icuData) == nil, "ICU's data is linked into token-brokerd")
    }

    @Test func tokenctlIsStatic() throws {
      let out = try Self.ldd(try BuiltBinaries.path("tokenctl"))
      #expect(out.contains("not a dynamic executable"), "tokenctl is dynamic: \(out)")
    }
  }
}

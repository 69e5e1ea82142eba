// swift-tools-version:6.0
import PackageDescription

// Layout (see README "Architecture"):
//   TokenBrokerTOML      TOML 1.0 parser, no dependencies
//   TokenBrokerJSON      RFC 8259 JSON reader and writer, no Foundation
//   TokenBrokerCore      no I/O: config model, token model, response/error parsing, policies
//   TokenBrokerUpstream  the token endpoint client (HTTP/1.1 on SwiftNIO, TLS by swift-nio-ssl)
//   TokenBrokerServer    HTTP/1.1 on a Unix socket (SwiftNIO), peer credentials at accept
//   TokenBrokerSystemd   sd_notify, sd_listen_fds, journald (libsystemd)
//   TokenBrokerEngine    per-provider actors over the refresh state machine, cache, state, secrets
//   TokenBrokerFleet     the fleet's shared store on PostgreSQL (PostgresNIO), AES-256-GCM (swift-crypto)
//   TokenBrokerAPI       the socket API and BrokerApp.compose (one wiring for daemon, tests, fuzzing)
//   TokenBrokerDaemon    the process: ServiceGroup, systemd status and watchdog, reload, demo issuer
//   TokenBrokerClient    a small blocking HTTP-over-Unix-socket client for tokenctl
let package = Package(
  name: "token-broker",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "token-brokerd", targets: ["token-brokerd"]),
    .executable(name: "tokenctl", targets: ["tokenctl"]),
    .executable(name: "token-broker-fleet", targets: ["token-broker-fleet"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    // 3.x or 4.x: the rest of the graph (postgres-nio, swift-certificates) resolves 4.x.
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
  ],
  targets: [
    // The service manager's protocols (sd_notify, the journal's native protocol, socket
    // activation) spoken directly: no libsystemd (README "Architecture").
    .target(name: "CSystemdProtocol"),
    // libc functions Swift's Glibc module does not declare (malloc_trim).
    .target(name: "CLibcExtras"),
    // RFC 8259 reader and writer, no Foundation: shared by the core, the client and the server.
    .target(name: "TokenBrokerJSON"),
    // TOML 1.0, on its own: no dependencies (the config parser above it adds the meaning).
    .target(name: "TokenBrokerTOML"),
    .target(name: "TokenBrokerCore", dependencies: ["TokenBrokerJSON", "TokenBrokerTOML"]),
    .target(
      name: "TokenBrokerUpstream",
      dependencies: [
        "TokenBrokerCore",
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .target(
      name: "TokenBrokerServer",
      dependencies: [
        "TokenBrokerCore",
        "TokenBrokerJSON",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .target(
      name: "TokenBrokerSystemd",
      dependencies: [
        "CSystemdProtocol",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The engine: per-provider actors over the core's refresh state machine, the token cache,
    // state store, secrets, access resolution, clock, metrics. No socket, no systemd.
    .target(
      name: "TokenBrokerEngine",
      dependencies: [
        "TokenBrokerCore",
        "CLibcExtras",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    // The fleet's shared store (README "Fleet"): FleetStore on PostgreSQL, the tokens sealed
    // with AES-256-GCM before they leave the daemon. Only what names it links PostgresNIO.
    .target(
      name: "TokenBrokerFleet",
      dependencies: [
        "TokenBrokerCore",
        "TokenBrokerEngine",
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The socket API (routes, authorisation, answers) and the one composition function
    // that the daemon, the test harness and the fuzz harness all call.
    .target(
      name: "TokenBrokerAPI",
      dependencies: [
        "TokenBrokerCore",
        "TokenBrokerEngine",
        "TokenBrokerServer",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // The process: life cycle, signals, systemd status and watchdog, log setup, demo issuer.
    .target(
      name: "TokenBrokerDaemon",
      dependencies: [
        "TokenBrokerCore",
        "TokenBrokerTOML",
        "TokenBrokerEngine",
        "TokenBrokerAPI",
        "TokenBrokerServer",
        "TokenBrokerSystemd",
        "TokenBrokerUpstream",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .target(name: "TokenBrokerClient", dependencies: ["TokenBrokerJSON"]),
    // The fleet helper: the PostgreSQL connections in a process of their own, started by
    // token-brokerd under [fleet] (postgres-nio needs Foundation, which the daemon does not link).
    .executableTarget(
      name: "token-broker-fleet",
      dependencies: [
        "TokenBrokerFleet", "TokenBrokerEngine", "TokenBrokerCore",
        .product(name: "Logging", package: "swift-log"),
      ],
      // Like token-brokerd, it needs no Swift runtime on the server (the package's Depends:).
      swiftSettings: [.unsafeFlags(["-static-stdlib"])],
      linkerSettings: [
        .unsafeFlags([
          "-static-stdlib", "-use-ld=lld", "-Xlinker", "--no-export-dynamic",
          // what a debug build's autolink entries leave out (see token-brokerd)
          "-Xlinker", "-lCoreFoundation", "-Xlinker", "-lFoundationInternationalization", "-Xlinker",
          "-l_FoundationICU",
          "-Xlinker", "-l_FoundationCShims", "-Xlinker",
          "-l_FoundationCollections",
        ])
      ]
    ),
    .executableTarget(
      name: "token-brokerd",
      dependencies: [
        "TokenBrokerDaemon",
        "TokenBrokerEngine",
        "TokenBrokerCore",
        "TokenBrokerServer",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      exclude: ["symbol-order.txt"],
      // The Swift runtime is linked in statically (nothing in the daemon imports Foundation, so
      // neither it nor ICU's data is in the binary: see LinkageTests), and lld packs the relative relocations (DT_RELR, glibc 2.36) so start-up
      // does not read them all (README "Performance").
      swiftSettings: [.unsafeFlags(["-static-stdlib"])],
      linkerSettings: [
        .unsafeFlags([
          "-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
          // nothing loads this executable's symbols: no dynamic symbol table of every Swift symbol
          "-Xlinker", "--no-export-dynamic",
          // the functions a run executes first and together (`make orderfile`; with the release
          // build's function sections, README "Performance"): few pages of code become resident
          "-Xlinker",
          "--symbol-ordering-file=\(Context.packageDirectory)/Sources/token-brokerd/symbol-order.txt",
          "-Xlinker", "--no-warn-symbol-ordering",
        ])
      ]
    ),
    // tokenctl is a static executable without Foundation: no dynamic loader work at start,
    // about 1 ms for the whole process (README "Performance"). The link prints one warning
    // from the toolchain's own libswiftCore.a (dlopen in a static binary); tokenctl loads nothing.
    .executableTarget(
      name: "tokenctl",
      dependencies: ["TokenBrokerClient"],
      linkerSettings: [.unsafeFlags(["-static-executable"])]
    ),
    // Measurement and reliability tools (see README "Performance" and "Reliability").
    .executableTarget(
      name: "token-broker-bench",
      dependencies: [
        "TokenBrokerEngine",
        "TokenBrokerAPI",
        "TokenBrokerServer",
        "TokenBrokerCore",
        "TokenBrokerClient",
        "TokenBrokerTestSupport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      // the bench's own load generator, compiled by the bench at run time
      exclude: ["udsload.c"]
    ),
    .target(
      name: "TokenBrokerFuzzTargets",
      dependencies: [
        "TokenBrokerEngine",
        "TokenBrokerAPI",
        .product(name: "Logging", package: "swift-log"),
        "TokenBrokerCore",
        "TokenBrokerServer",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    .executableTarget(
      name: "token-broker-fuzz",
      dependencies: ["TokenBrokerFuzzTargets"]
    ),
    .executableTarget(
      name: "token-broker-reliability",
      dependencies: [
        "TokenBrokerEngine",
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        "TokenBrokerCore",
        "TokenBrokerClient",
        "TokenBrokerTestSupport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .target(
      name: "TokenBrokerTestSupport",
      dependencies: [
        "TokenBrokerEngine",
        "TokenBrokerAPI",
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        "TokenBrokerClient",
        "TokenBrokerUpstream",
        "TokenBrokerServer",
        "TokenBrokerCore",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ]
    ),
    .testTarget(
      name: "TokenBrokerCoreTests",
      dependencies: ["TokenBrokerCore", "TokenBrokerClient"]
    ),
    .testTarget(name: "TokenBrokerTOMLTests", dependencies: ["TokenBrokerTOML"]),
    .testTarget(
      name: "TokenBrokerJSONTests",
      dependencies: ["TokenBrokerJSON"]
    ),
    .testTarget(
      name: "ReliabilityTests",
      dependencies: [
        "TokenBrokerFuzzTargets", "TokenBrokerTestSupport", "TokenBrokerClient", "TokenBrokerCore",
        // the tools the tests run, so that they are built with the tests
        "token-broker-fuzz", "token-broker-reliability",
      ],
      exclude: ["Corpus"]
    ),
    .testTarget(
      name: "TokenBrokerSystemdTests",
      dependencies: [
        "TokenBrokerSystemd",
        "TokenBrokerTestSupport",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(
      name: "SystemTests",
      dependencies: ["TokenBrokerTestSupport", "TokenBrokerClient", "TokenBrokerCore"],
      // the Django project of the real authorization server the tests start (make oauth-server-deps)
      exclude: ["AuthorizationServer"]
    ),
    .testTarget(
      name: "TokenBrokerDaemonTests",
      dependencies: [
        "TokenBrokerDaemon", "TokenBrokerTestSupport",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .testTarget(
      name: "TokenBrokerServerTests",
      dependencies: [
        "TokenBrokerServer", "TokenBrokerTestSupport", .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // One test target per source target; the shared fixtures are in TokenBrokerTestSupport.
    // The tests that run token-brokerd or tokenctl cannot name them as dependencies (their
    // static-link flags would apply to the test bundle's link): `swift build --build-tests`
    // (make test) builds them, and BuiltBinaries says so when one is missing.
    .testTarget(
      name: "TokenBrokerEngineTests",
      dependencies: ["TokenBrokerEngine", "TokenBrokerAPI", "TokenBrokerCore", "TokenBrokerTestSupport"]
    ),
    // Against a throwaway PostgreSQL 15 cluster (PostgresFixture; Debian's postgresql package).
    .testTarget(
      name: "TokenBrokerFleetTests",
      dependencies: ["TokenBrokerFleet", "TokenBrokerEngine", "TokenBrokerCore", "TokenBrokerTestSupport"]
    ),
    .testTarget(
      name: "TokenBrokerAPITests",
      dependencies: [
        "TokenBrokerAPI", "TokenBrokerEngine", "TokenBrokerServer", "TokenBrokerClient", "TokenBrokerCore",
        "TokenBrokerTestSupport",
      ]
    ),
    .testTarget(
      name: "TokenBrokerUpstreamTests",
      dependencies: [
        "TokenBrokerUpstream", "TokenBrokerEngine", "TokenBrokerCore", "TokenBrokerTestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .testTarget(
      name: "TokenBrokerClientTests",
      dependencies: ["TokenBrokerClient", "TokenBrokerEngine", "TokenBrokerCore", "TokenBrokerTestSupport"]
    ),
  ]
)

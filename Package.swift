// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "masqd",
    products: [
        .executable(name: "masqd", targets: ["MasqdCLI"]),
        .library(name: "NATCore", targets: ["NATCore"]),
        .library(name: "NetfilterQueue", targets: ["NetfilterQueue"]),
        .library(name: "NATHelpers", targets: ["NATHelpers"]),
        .library(name: "Masqd", targets: ["Masqd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"), // LogHandler.log(event:)
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C shim over libnetfilter_queue + libmnl: prefixed names, macros as functions.
        .target(
            name: "CNetfilterQueue",
            linkerSettings: [.linkedLibrary("netfilter_queue"), .linkedLibrary("mnl")]
        ),
        // Swift binding of one NFQUEUE: nothing NAT-specific.
        .target(name: "NetfilterQueue", dependencies: ["CNetfilterQueue"]),
        // Pure translation core: no syscalls, no clock reads, no Foundation.
        .target(name: "NATCore"),
        // Application helpers (FTP, IRC), written only against NATCore's public helper API.
        .target(name: "NATHelpers", dependencies: ["NATCore"]),
        // The daemon: options, rules, engine loop, control socket, lab.
        .target(
            name: "Masqd",
            dependencies: [
                "NATCore", "NATHelpers", "NetfilterQueue",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The executable: argument parsing only.
        .executableTarget(
            name: "MasqdCLI",
            dependencies: ["Masqd", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Packet builder and an independent checksum, shared by the unit-test targets.
        .target(name: "PacketTestSupport", dependencies: ["NATCore"], path: "Tests/PacketTestSupport"),
        .testTarget(name: "NATCoreTests", dependencies: ["NATCore", "PacketTestSupport"]),
        .testTarget(name: "NATHelpersTests", dependencies: ["NATHelpers", "NATCore", "PacketTestSupport"]),
        .testTarget(name: "NetfilterQueueTests", dependencies: ["NetfilterQueue"]),
        // Real namespaces, real iptables, the real masqd binary (hence the MasqdCLI dependency).
        .testTarget(name: "IntegrationTests", dependencies: ["MasqdCLI", "Masqd"]),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "masqd",
    products: [
        .executable(name: "masqd", targets: ["MasqdExecutable"]),
        // The command tree, for a package that builds its own masqd with extra helpers (Examples/).
        .library(name: "MasqdCLI", targets: ["MasqdCLI"]),
        // Packet builder, reference checksum and TCP/UDP drivers for helper tests.
        .library(name: "NATTestKit", targets: ["NATTestKit"]),
        .library(name: "NATCore", targets: ["NATCore"]),
        .library(name: "NetfilterQueue", targets: ["NetfilterQueue"]),
        .library(name: "NATHelpers", targets: ["NATHelpers"]),
        .library(name: "Masqd", targets: ["Masqd"]),
        .library(name: "PacketCapture", targets: ["PacketCapture"]),
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
        // C shim for the daemon's Linux plumbing: rtnetlink address monitor, thread names.
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("mnl")]),
        // C shim over libbpf for the kernel fast path (--fast-path): load, tc attach, flow map.
        // bpf/ holds the BPF program itself, built by Deploy/build-bpf.sh (clang -target bpf).
        .target(name: "CFastPath", exclude: ["bpf"], linkerSettings: [.linkedLibrary("bpf")]),
        // The one shape of counters: an enum of names indexing a fixed inline array.
        .target(name: "CounterSet"),
        // Swift binding of one NFQUEUE: nothing NAT-specific.
        .target(name: "NetfilterQueue", dependencies: ["CNetfilterQueue", "CounterSet"]),
        // Pure translation core: no syscalls, no clock reads, no Foundation.
        .target(name: "NATCore", dependencies: ["CounterSet"]),
        // Application helpers (FTP, IRC), written only against NATCore's public helper API.
        .target(name: "NATHelpers", dependencies: ["NATCore"]),
        // pcap/pcapng reading and pcap writing, bytes in, bytes out: no syscalls, no Foundation (fuzzed).
        .target(name: "PacketCapture"),
        // Running commands (iptables, nft, ip) and background processes: Foundation's Process.
        .target(name: "MasqdShell"),
        // The daemon: options, rules, engine loop, control socket.
        .target(
            name: "Masqd",
            dependencies: [
                "NATCore", "NATHelpers", "NetfilterQueue", "PacketCapture", "CLinux", "CFastPath", "CounterSet", "MasqdShell",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // `masqd lab`: the demo network in namespaces, its Python helper script, the engine in it.
        .target(name: "MasqdLab", dependencies: ["Masqd", "MasqdShell"]),
        // The command tree: argument parsing only. `MasqdMain.main(helpers:)` runs it.
        .target(
            name: "MasqdCLI",
            dependencies: ["Masqd", "MasqdLab", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The `masqd` executable: the command tree with the built-in helpers only.
        .executableTarget(name: "MasqdExecutable", dependencies: ["MasqdCLI"]),
        // The public test kit for helper authors, and the one packet builder, reader and reference
        // checksum of masqd's own tests (no Foundation, no test framework: drivers throw).
        .target(name: "NATTestKit", dependencies: ["NATCore"]),
        .testTarget(name: "NATCoreTests", dependencies: ["NATCore", "NATTestKit"]),
        .testTarget(name: "NATHelpersTests", dependencies: ["NATHelpers", "NATCore", "NATTestKit"]),
        .testTarget(name: "NetfilterQueueTests", dependencies: ["NetfilterQueue"]),
        .testTarget(name: "NATTestKitTests", dependencies: ["NATTestKit", "NATCore", "NATHelpers"]),
        .testTarget(name: "PacketCaptureTests", dependencies: ["PacketCapture"]),
        // Real namespaces, real iptables, the real masqd binary (hence the MasqdExecutable dependency).
        .testTarget(name: "IntegrationTests", dependencies: ["MasqdExecutable", "Masqd", "MasqdLab", "MasqdShell", "PacketCapture", "NATTestKit"]),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.1
// A helper built outside masqd: the package a user writes. It depends on masqd by path (a
// real one would use `.package(url: "https://…/masqd", from: "…")`), defines a datagram
// helper in its own library, tests it with masqd's test kit, and builds its own masqd binary
// with the helper added. README.md explains the protocol and how to run it.
import PackageDescription

let package = Package(
    name: "RendezvousHelper",
    products: [
        // The user's own masqd: every command and option of masqd, plus `--helpers rendezvous`.
        .executable(name: "masqd-rendezvous", targets: ["MasqdRendezvous"]),
    ],
    dependencies: [
        // The name pins the identity: a path dependency is otherwise named after the checkout folder.
        .package(name: "masqd", path: "../.."),
    ],
    targets: [
        // The helper, written only against NATCore's public helper API.
        .target(name: "Rendezvous", dependencies: [.product(name: "NATCore", package: "masqd")]),
        // main.swift: one call of MasqdMain.main(helpers:).
        .executableTarget(
            name: "MasqdRendezvous",
            dependencies: [
                "Rendezvous",
                .product(name: "MasqdCLI", package: "masqd"),
                .product(name: "Masqd", package: "masqd"),
                .product(name: "NATCore", package: "masqd"),
            ]
        ),
        // Crafted datagrams through a real translator (NATTestKit's driver and reference checksums).
        .testTarget(
            name: "RendezvousTests",
            dependencies: ["Rendezvous", .product(name: "NATCore", package: "masqd"), .product(name: "NATTestKit", package: "masqd")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

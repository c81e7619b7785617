import PacketTestSupport
// Shared fixtures: the lab addresses, a seeded RNG and a translator harness.

@testable import NATCore

enum Net {
    static let external = IPv4Bytes(203, 0, 113, 1)
    static let remote = IPv4Bytes(203, 0, 113, 2)
    static let remote2 = IPv4Bytes(203, 0, 113, 3)
    static let hostA = IPv4Bytes(192, 0, 2, 10)
    static let hostB = IPv4Bytes(192, 0, 2, 11)
    static let hostC = IPv4Bytes(192, 0, 2, 12)
    static let outsider = IPv4Bytes(198, 51, 100, 7)
}

extension IPv4Bytes {
    var address: IPv4Address { IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3]) }
}

/// SplitMix64: small, seeded, reproducible.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

let t0 = NATTime.seconds(1000)

func at(_ seconds: UInt64, plusNanoseconds extra: UInt64 = 0) -> NATTime {
    NATTime(nanoseconds: t0.nanoseconds + seconds * 1_000_000_000 + extra)
}

func makeTranslator(
    external: IPv4Bytes? = Net.external,
    internalPrefixes: [String] = ["192.0.2.0/24"],
    _ configure: (inout NATConfiguration) -> Void = { _ in }
) -> NATTranslator {
    var configuration = NATConfiguration(
        externalAddress: external?.address,
        internalPrefixes: internalPrefixes.map { IPv4Prefix($0)! })
    configuration.maxSessions = 1024
    configuration.maxMappings = 1024
    configure(&configuration)
    return NATTranslator(configuration: configuration)
}

extension NATTranslator {
    /// Translates `packet` in place.
    func run(_ packet: inout [UInt8], _ direction: PacketDirection, notReady: Bool = false, gso: Bool = false, now: NATTime = t0) -> TranslationVerdict {
        packet.withUnsafeMutableBytes { buffer in
            translate(buffer, direction: direction, checksum: PacketChecksumState(checksumNotReady: notReady, isGSO: gso), now: now)
        }
    }

    func snapshots(now: NATTime) -> [SessionSnapshot] {
        var all: [SessionSnapshot] = []
        forEachSession(now: now) { all.append($0) }
        return all
    }
}

/// Source or destination port (or ICMP identifier) of a finished packet.
func sourcePort(_ p: [UInt8]) -> UInt16 {
    let ihl = Verify.headerLength(p)
    return p[9] == 1 ? Verify.be16(p, ihl + 4) : Verify.be16(p, ihl)
}

func destinationPort(_ p: [UInt8]) -> UInt16 {
    let ihl = Verify.headerLength(p)
    return p[9] == 1 ? Verify.be16(p, ihl + 4) : Verify.be16(p, ihl + 2)
}

func sourceAddress(_ p: [UInt8]) -> IPv4Bytes { IPv4Bytes(bytes: Array(p[12..<16])) }
func destinationAddress(_ p: [UInt8]) -> IPv4Bytes { IPv4Bytes(bytes: Array(p[16..<20])) }

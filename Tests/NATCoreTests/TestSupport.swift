import NATTestKit
import Testing
// Shared fixtures: the lab addresses, a seeded RNG and a translator harness.

@testable import NATCore

/// The addresses of these tests: the kit's `TestNet` (one set of test addresses), with the
/// names these tests use.
typealias Net = TestNet

extension TestNet {
    static var hostA: IPv4Bytes { insideHost }
    static var hostB: IPv4Bytes { otherInsideHost }
    static let hostC = IPv4Bytes(192, 0, 2, 12)
    static let remote = IPv4Bytes(203, 0, 113, 2)
    static let remote2 = IPv4Bytes(203, 0, 113, 3)
    static let outsider = IPv4Bytes(198, 51, 100, 7)
}

let t0 = TestNet.start

func at(_ seconds: UInt64, plusNanoseconds extra: UInt64 = 0) -> NATTime {
    NATTime(nanoseconds: t0.nanoseconds + seconds * 1_000_000_000 + extra)
}

/// The kit's test translator (tables of 1024) with another external address (or none) and
/// other inside prefixes.
func makeTranslator(
    external: IPv4Bytes? = Net.external,
    internalPrefixes: [String] = ["192.0.2.0/24"],
    _ configure: (inout NATConfiguration) -> Void = { _ in }
) -> NATTranslator {
    TestNet.translator {
        $0.externalAddress = external?.address
        $0.internalPrefixes = internalPrefixes.map { IPv4Prefix($0)! }
        configure(&$0)
    }
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

/// Runs `packet` through `nat` and checks the verdict and that the bytes were left exactly as
/// they came (a packet passed on or dropped is never half rewritten).
func expectUnchanged(_ nat: NATTranslator, _ packet: [UInt8], _ direction: PacketDirection, verdict: TranslationVerdict = .accept,
                     notReady: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
    var copy = packet
    #expect(nat.run(&copy, direction, notReady: notReady) == verdict, sourceLocation: sourceLocation)
    #expect(copy == packet, "the bytes changed", sourceLocation: sourceLocation)
}

/// Source or destination port (or ICMP identifier) of a finished packet (the kit's reader).
func sourcePort(_ p: [UInt8]) -> UInt16 { PacketReader.sourcePort(p) }
func destinationPort(_ p: [UInt8]) -> UInt16 { PacketReader.destinationPort(p) }
func sourceAddress(_ p: [UInt8]) -> IPv4Bytes { PacketReader.sourceAddress(p) }
func destinationAddress(_ p: [UInt8]) -> IPv4Bytes { PacketReader.destinationAddress(p) }

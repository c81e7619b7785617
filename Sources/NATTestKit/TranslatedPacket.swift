import NATCore

// A packet after the translator: NATCore's verdict as a plain value (its `acceptReplaced`
// buffer belongs to the translator and is only valid until the next call, so it is copied).

/// What the translator did with a packet, and the bytes as they leave.
public struct TranslatedPacket: Equatable, Sendable {
    /// NATCore's `TranslationVerdict` as a plain value.
    public enum Verdict: Equatable, Sendable {
        /// Passed on unchanged. Inbound this means "not ours": it goes to the router's own
        /// stack, never to an inside host.
        case accept
        /// Translated in place.
        case rewritten
        /// Translated into new bytes (a helper changed the payload's length).
        case replaced
        case drop(DropReason)
    }

    public var verdict: Verdict
    /// The packet as it leaves: rewritten in place, the replacement bytes, or (accept, drop)
    /// the bytes as they were given.
    public var packet: [UInt8]

    public init(verdict: Verdict, packet: [UInt8]) {
        self.verdict = verdict
        self.packet = packet
    }

    /// True when the packet was translated and goes on to the peer: the only outcome in which
    /// the other side receives it.
    public var isDelivered: Bool { verdict == .rewritten || verdict == .replaced }

    public var payload: [UInt8] { PacketReader.payload(packet) }
    /// The payload as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: payload, as: UTF8.self) }
    public var source: Endpoint { Endpoint(PacketReader.sourceAddress(packet), PacketReader.sourcePort(packet)) }
    public var destination: Endpoint { Endpoint(PacketReader.destinationAddress(packet), PacketReader.destinationPort(packet)) }
    /// TCP only.
    public var seq: UInt32 { PacketReader.seq(packet) }
    /// TCP only.
    public var ack: UInt32 { PacketReader.ack(packet) }
    /// Lengths and both checksums recomputed independently (`Verify.wellFormed`).
    public var isWellFormed: Bool { Verify.wellFormed(packet) }
}

extension NATTranslator {
    /// Translates a copy of `packet` (an IPv4 packet from its first byte) and returns what
    /// leaves. `checksum` says how the kernel handed the packet over (default: a complete
    /// checksum, not GSO).
    public func translate(
        _ packet: [UInt8], direction: PacketDirection,
        checksum: PacketChecksumState = PacketChecksumState(), now: NATTime = TestNet.start
    ) -> TranslatedPacket {
        var bytes = packet
        let verdict = bytes.withUnsafeMutableBytes { translate($0, direction: direction, checksum: checksum, now: now) }
        switch verdict {
        case .accept: return TranslatedPacket(verdict: .accept, packet: bytes)
        case .acceptRewritten: return TranslatedPacket(verdict: .rewritten, packet: bytes)
        case .acceptReplaced(let replacement): return TranslatedPacket(verdict: .replaced, packet: [UInt8](replacement))
        case .drop(let reason): return TranslatedPacket(verdict: .drop(reason), packet: bytes)
        }
    }

    /// How often helper number `index` (its place in `configuration.helpers`) counted `event`.
    public func helperEvents(_ event: HelperEvent, helper index: Int = 0) -> UInt64 {
        counters.helperEvents(helper: index, event)
    }
}

/// A driver could not do what it was asked (a handshake step not translated, a datagram to an
/// external port not known yet); the message names the step and the verdict.
public struct DriverFailure: Error, CustomStringConvertible {
    public let description: String
    /// What the translator returned at the failing step, when there was a packet.
    public let packet: TranslatedPacket?

    public init(_ description: String, packet: TranslatedPacket? = nil) {
        self.description = description
        self.packet = packet
    }
}

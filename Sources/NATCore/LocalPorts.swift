// The router's own ports on the WAN side: ports its sockets hold on the WAN address or the
// wildcard (read by the daemon from the kernel), and optionally its whole ephemeral range
// (`net.ipv4.ip_local_port_range`). They are not masqd's mappings, so the core must never hand
// them to a LAN host: the allocator skips them and inbound packets to them go to the router's
// stack untranslated (port forwards excepted: the admin asked for those).

/// A set of TCP and UDP ports, as the daemon reports them: one bit per port and protocol.
public struct LocalPortSet: Sendable, Equatable {
    /// TCP's 1024 words, then UDP's.
    var words: [UInt64]
    static let wordsPerProtocol = 65536 / 64

    public init() { words = [UInt64](repeating: 0, count: 2 * LocalPortSet.wordsPerProtocol) }

    /// Slot of a protocol that has ports the router's sockets can hold: TCP 0, UDP 1.
    @inline(__always)
    static func slot(_ protocolNumber: UInt8) -> Int? {
        switch protocolNumber {
        case IPProtocolNumber.tcp: 0
        case IPProtocolNumber.udp: 1
        default: nil
        }
    }

    public mutating func insert(protocolNumber: UInt8, port: UInt16) {
        guard let slot = Self.slot(protocolNumber) else { return }
        words[slot * Self.wordsPerProtocol + Int(port >> 6)] |= 1 << UInt64(port & 63)
    }

    public func contains(protocolNumber: UInt8, port: UInt16) -> Bool {
        guard let slot = Self.slot(protocolNumber) else { return false }
        return words[slot * Self.wordsPerProtocol + Int(port >> 6)] >> UInt64(port & 63) & 1 == 1
    }

    /// Ports in the set for one protocol.
    public func count(protocolNumber: UInt8) -> Int {
        guard let slot = Self.slot(protocolNumber) else { return 0 }
        return words[slot * Self.wordsPerProtocol..<(slot + 1) * Self.wordsPerProtocol].reduce(0) { $0 + $1.nonzeroBitCount }
    }
}

/// The translator's copy: held ports and the reserved range in one bitmap, allocated once, so
/// the packet path tests a port with one load; and the held ports alone (a packet to a
/// reserved port nobody holds and no mapping has is just unmatched, as before). Not copyable:
/// the map owns its bitmaps (FixedBuffer).
struct LocalPortMap: ~Copyable {
    private let words = FixedBuffer<UInt64>(count: 2 * LocalPortSet.wordsPerProtocol, repeating: 0)
    private let heldWords = FixedBuffer<UInt64>(count: 2 * LocalPortSet.wordsPerProtocol, repeating: 0)
    /// The reserved range (kept apart too: the allocator steps over it rather than through it).
    private(set) var reserved: ClosedRange<UInt16>?

    /// The empty map, for callers without one (allocator unit tests).
    nonisolated(unsafe) static let none = LocalPortMap()

    /// Whether the router holds or reserves `port`; `slot` as in ExternalPortTable (ICMP's 2 never).
    @inline(__always)
    func contains(slot: Int, port: UInt16) -> Bool {
        slot < 2 && words[slot &* LocalPortSet.wordsPerProtocol &+ Int(port &>> 6)] &>> UInt64(port & 63) & 1 == 1
    }

    /// Whether a socket of the router holds `port` (the reserved range aside).
    @inline(__always)
    func containsHeld(slot: Int, port: UInt16) -> Bool {
        slot < 2 && heldWords[slot &* LocalPortSet.wordsPerProtocol &+ Int(port &>> 6)] &>> UInt64(port & 63) & 1 == 1
    }

    /// Calls `body` with every port of `slot` the router holds or reserves (whole empty words skipped).
    @inline(__always)
    func forEachPort(slot: Int, _ body: (UInt16) -> Void) {
        for w in 0..<LocalPortSet.wordsPerProtocol {
            var bits = words[slot * LocalPortSet.wordsPerProtocol + w]
            while bits != 0 {
                body(UInt16(w * 64 + bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
    }

    mutating func set(_ held: LocalPortSet, reserved: ClosedRange<UInt16>?) {
        for i in 0..<held.words.count {
            words[i] = held.words[i]
            heldWords[i] = held.words[i]
        }
        self.reserved = reserved
        guard let reserved else { return }
        for slot in 0..<2 {
            for port in reserved { words[slot * LocalPortSet.wordsPerProtocol + Int(port >> 6)] |= 1 << UInt64(port & 63) }
        }
    }
}

import NATCore

// Which held fragment belongs to which datagram, so that the tokens the reassembler hands back
// for dropping can be reported with the right reason: merged into a completed datagram (not a
// drop), discarded with their datagram (the reason of the fragment that broke it), or evicted
// to make room for another datagram.

struct FragmentKey: Hashable {
    var source: UInt32
    var destination: UInt32
    var identification: UInt16
    var protocolNumber: UInt8

    /// The reassembler's key of an IPv4 fragment (the caller has checked it is one: 20 bytes or more).
    init(_ packet: UnsafeMutableRawBufferPointer) {
        func be32(_ at: Int) -> UInt32 {
            UInt32(packet[at]) << 24 | UInt32(packet[at + 1]) << 16 | UInt32(packet[at + 2]) << 8 | UInt32(packet[at + 3])
        }
        source = be32(12)
        destination = be32(16)
        identification = UInt16(packet[4]) << 8 | UInt16(packet[5])
        protocolNumber = packet[9]
    }
}

struct ReplayFragments {
    /// Held fragments by token (the packet's index in the capture).
    private var held: [UInt32: FragmentKey] = [:]

    enum Fate: Equatable {
        /// Part of the datagram `key` names.
        case member
        /// Another datagram's fragment.
        case other
    }

    mutating func hold(_ token: UInt32, key: FragmentKey) { held[token] = key }

    /// Forgets `token` and tells whether it belonged to the datagram `key`.
    mutating func release(_ token: UInt32, datagram key: FragmentKey) -> Fate {
        held.removeValue(forKey: token) == key ? .member : .other
    }

    /// Forgets `token` (dropped for a reason of its own: a timeout, the end of the capture).
    mutating func release(_ token: UInt32) { held.removeValue(forKey: token) }

    var count: Int { held.count }
}

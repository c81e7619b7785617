// The protocol seam, the role of the kernel's nf_nat_l4proto: for each transport protocol the
// NAT translates by an identifier of its own (ports, the echo identifier), how that identifier
// is read and rewritten, how the checksum follows, which timeout applies and what an ICMP
// error's quote of it holds. Each protocol's rules live in its own file
// (TransportProtocol-TCP.swift, -UDP, -ICMPEcho); this enum is the one dispatch point. A
// switch on it is folded by the optimiser where the case is known, so no existential or class
// is involved per packet. The raw value is the protocol's slot in the per-port tables
// (ExternalPortTable, LocalPortMap). Protocols without identifiers are not here: they get
// address-only NAT (NATTranslator-AddressOnly.swift).

enum TransportProtocol: Int {
    case tcp = 0
    case udp = 1
    case icmpEcho = 2

    /// Number of slots the per-port tables keep.
    static let count = 3

    @inline(__always)
    init?(protocolNumber: UInt8) {
        switch protocolNumber {
        case IPProtocolNumber.tcp: self = .tcp
        case IPProtocolNumber.udp: self = .udp
        case IPProtocolNumber.icmp: self = .icmpEcho
        default: return nil
        }
    }

    @inline(__always)
    var slot: Int { rawValue }

    /// Whether the remote side has a port of its own: an ICMP echo has one identifier, chosen
    /// by the internal host, so the remote's "port" is 0 in every table.
    @inline(__always)
    var remoteHasPort: Bool { self != .icmpEcho }

    /// Reads the identifiers (validating the header's lengths).
    @inline(__always)
    func read(_ l4: UnsafeMutableRawPointer, length: Int) -> TransportReadResult {
        switch self {
        case .tcp: TCPTransport.read(l4, length: length)
        case .udp: UDPTransport.read(l4, length: length)
        case .icmpEcho: ICMPEchoTransport.read(l4, length: length)
        }
    }

    /// Rewrites the source (or destination) identifier to `port` and fixes the checksum for
    /// that and the address change `oldAddress` → `newAddress` (already written in the IP header).
    @inline(__always)
    func rewrite(_ ip: IPv4Packet, rewriteSource: Bool, oldAddress: UInt32, newAddress: UInt32, port: UInt16,
                 checksum: PacketChecksumState) {
        switch self {
        case .tcp: TCPTransport.rewrite(ip, rewriteSource: rewriteSource, oldAddress: oldAddress, newAddress: newAddress,
                                        port: port, checksum: checksum)
        case .udp: UDPTransport.rewrite(ip, rewriteSource: rewriteSource, oldAddress: oldAddress, newAddress: newAddress,
                                        port: port, checksum: checksum)
        case .icmpEcho: ICMPEchoTransport.rewrite(ip, port: port, checksum: checksum)
        }
    }

    @inline(__always)
    func timeout(_ timeouts: NATTimeouts, tcpState: TCPSessionState) -> NATDuration {
        switch self {
        case .tcp: TCPTransport.timeout(timeouts, tcpState: tcpState)
        case .udp: timeouts.udp
        case .icmpEcho: timeouts.icmp
        }
    }

    /// The identifiers of a packet quoted in an ICMP error (`l4`: its first 8 bytes at least),
    /// or nil when such a quote is not translated.
    func readQuoted(_ l4: UnsafeMutableRawPointer) -> (source: UInt16, destination: UInt16)? {
        switch self {
        case .tcp, .udp: (l4.loadBE16(at: 0), l4.loadBE16(at: 2))
        case .icmpEcho: ICMPEchoTransport.readQuoted(l4)
        }
    }

    /// Rewrites a quoted packet's identifier, and its checksum where it was quoted
    /// (`available` bytes of the quoted transport header are present).
    func rewriteQuoted(_ l4: UnsafeMutableRawPointer, available: Int, source: Bool, oldAddress: UInt32, newAddress: UInt32,
                       port: UInt16) {
        switch self {
        case .tcp: TCPTransport.rewriteQuoted(l4, available: available, source: source, oldAddress: oldAddress,
                                              newAddress: newAddress, port: port)
        case .udp: UDPTransport.rewriteQuoted(l4, available: available, source: source, oldAddress: oldAddress,
                                              newAddress: newAddress, port: port)
        case .icmpEcho: ICMPEchoTransport.rewriteQuoted(l4, port: port)
        }
    }
}

extension IPv4Packet {
    /// Writes the full TCP/UDP checksum over the pseudo-header and `length` transport bytes;
    /// `zeroMeansNone`: UDP's rule (RFC 768), a computed 0 is sent as 0xffff.
    @inline(__always)
    func completeTransportChecksum(checksumOffset: Int, length: Int, zeroMeansNone: Bool) {
        let l4 = transport
        l4.storeBE16(0, at: checksumOffset)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: header.source.value, destination: header.destination.value,
            protocolNumber: header.protocolNumber, length: length)
        var value = ~InternetChecksum.add(pseudo, InternetChecksum.sum(UnsafeRawPointer(l4), count: length))
        if zeroMeansNone, value == 0 { value = 0xffff }
        l4.storeBE16(value, at: checksumOffset)
    }
}

/// RFC 1624 update of a pseudo-header checksum for one address and one port changed.
@inline(__always)
func adjustedTransportChecksum(_ sum: UInt16, oldAddress: UInt32, newAddress: UInt32, oldPort: UInt16, newPort: UInt16) -> UInt16 {
    InternetChecksum.adjust(InternetChecksum.adjust(sum, oldAddress: oldAddress, newAddress: newAddress), old: oldPort, new: newPort)
}

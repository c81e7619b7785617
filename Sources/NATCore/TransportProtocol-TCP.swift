// TCP on the protocol seam: ports at bytes 0 and 2, a checksum at 16 over the pseudo-header
// (RFC 793), timeouts by connection state (NATTimeouts).

enum TCPTransport {
    @inline(__always)
    static func read(_ l4: UnsafeMutableRawPointer, length: Int) -> TransportReadResult {
        guard length >= TCPHeader.minimumLength else { return .malformed }
        let tcp = TCPHeader(unchecked: l4)
        guard tcp.dataOffset >= TCPHeader.minimumLength, tcp.dataOffset <= length else { return .malformed }
        return .endpoint(TransportEndpoint(transport: .tcp, sourcePort: tcp.sourcePort, destinationPort: tcp.destinationPort,
                                           tcpFlags: tcp.flags))
    }

    /// KERNEL-FACTS fact 3: a NFQA_SKB_CSUMNOTREADY packet carries only the pseudo-header sum,
    /// and a verdict with payload makes its checksum final, so it gets a full one — except a
    /// GSO super-packet, whose segments the kernel checksums itself (summing 64 KiB would be
    /// wasted). Every other packet's checksum is valid and gets the RFC 1624 update.
    @inline(__always)
    static func rewrite(_ ip: IPv4Packet, rewriteSource: Bool, oldAddress: UInt32, newAddress: UInt32, port: UInt16,
                        checksum: PacketChecksumState) {
        let tcp = TCPHeader(unchecked: ip.transport)
        let oldPort = tcp.replacePort(source: rewriteSource, with: port)
        if checksum.checksumNotReady && !checksum.isGSO {
            ip.completeTransportChecksum(checksumOffset: TCPHeader.checksumOffset, length: ip.transportLength, zeroMeansNone: false)
        } else {
            let sum = adjustedTransportChecksum(tcp.checksum, oldAddress: oldAddress, newAddress: newAddress, oldPort: oldPort, newPort: port)
            ip.transport.storeBE16(sum, at: TCPHeader.checksumOffset)
        }
    }

    @inline(__always)
    static func timeout(_ timeouts: NATTimeouts, tcpState: TCPSessionState) -> NATDuration {
        switch tcpState {
        case .established: timeouts.tcpEstablished
        case .reset: timeouts.tcpClosed
        case .opening: timeouts.tcpOpening
        default: timeouts.tcpTransitory
        }
    }

    /// The checksum lies beyond the 8 bytes an error must quote: fixed only if it was quoted.
    static func rewriteQuoted(_ l4: UnsafeMutableRawPointer, available: Int, source: Bool, oldAddress: UInt32, newAddress: UInt32,
                              port: UInt16) {
        let oldPort = TCPHeader(unchecked: l4).replacePort(source: source, with: port)
        guard available >= TCPHeader.checksumOffset + 2 else { return }
        let sum = adjustedTransportChecksum(l4.loadBE16(at: TCPHeader.checksumOffset), oldAddress: oldAddress, newAddress: newAddress,
                                            oldPort: oldPort, newPort: port)
        l4.storeBE16(sum, at: TCPHeader.checksumOffset)
    }
}

// UDP on the protocol seam: ports at bytes 0 and 2, a checksum at 6 over the pseudo-header
// and the datagram's own length, where 0 means "none sent" (RFC 768): a 0 stays 0, and a
// computed 0 is sent as 0xffff.

enum UDPTransport {
    @inline(__always)
    static func read(_ l4: UnsafeMutableRawPointer, length: Int) -> TransportReadResult {
        guard length >= UDPHeader.length else { return .malformed }
        let udp = UDPHeader(unchecked: l4)
        guard udp.datagramLength >= UDPHeader.length, udp.datagramLength <= length else { return .malformed }
        return .endpoint(TransportEndpoint(transport: .udp, sourcePort: udp.sourcePort, destinationPort: udp.destinationPort,
                                           tcpFlags: []))
    }

    /// A NFQA_SKB_CSUMNOTREADY datagram gets a full checksum (KERNEL-FACTS fact 3, as TCP).
    @inline(__always)
    static func rewrite(_ ip: IPv4Packet, rewriteSource: Bool, oldAddress: UInt32, newAddress: UInt32, port: UInt16,
                        checksum: PacketChecksumState) {
        let udp = UDPHeader(unchecked: ip.transport)
        let oldPort = udp.replacePort(source: rewriteSource, with: port)
        if checksum.checksumNotReady {
            ip.completeTransportChecksum(checksumOffset: UDPHeader.checksumOffset, length: udp.datagramLength, zeroMeansNone: true)
        } else if udp.checksum != 0 { // 0: sender sent no checksum; keep it that way
            let sum = adjustedTransportChecksum(udp.checksum, oldAddress: oldAddress, newAddress: newAddress, oldPort: oldPort, newPort: port)
            ip.transport.storeBE16(sum == 0 ? 0xffff : sum, at: UDPHeader.checksumOffset)
        }
    }

    /// The checksum is within the 8 quoted bytes; a quoted 0 (none sent) stays 0.
    static func rewriteQuoted(_ l4: UnsafeMutableRawPointer, available: Int, source: Bool, oldAddress: UInt32, newAddress: UInt32,
                              port: UInt16) {
        let oldPort = UDPHeader(unchecked: l4).replacePort(source: source, with: port)
        let old = l4.loadBE16(at: UDPHeader.checksumOffset)
        guard available >= UDPHeader.checksumOffset + 2, old != 0 else { return }
        let sum = adjustedTransportChecksum(old, oldAddress: oldAddress, newAddress: newAddress, oldPort: oldPort, newPort: port)
        l4.storeBE16(sum == 0 ? 0xffff : sum, at: UDPHeader.checksumOffset)
    }
}

// ICMP echo on the protocol seam (RFC 5508): the identifier at byte 4 is both "ports" (the
// remote has none), the checksum at 2 covers the message alone (no pseudo-header), so an
// address change does not touch it. Other ICMP types are not queries: errors are translated
// through their quote (NATTranslator-ICMPError.swift), the rest is not mapped.

enum ICMPEchoTransport {
    @inline(__always)
    static func read(_ l4: UnsafeMutableRawPointer, length: Int) -> TransportReadResult {
        guard length >= ICMPHeader.length else { return .malformed }
        let icmp = ICMPHeader(unchecked: l4)
        guard icmp.isQuery else { return .unsupported(.icmpUnsupported) }
        return .endpoint(TransportEndpoint(transport: .icmpEcho, sourcePort: icmp.identifier, destinationPort: icmp.identifier,
                                           tcpFlags: []))
    }

    @inline(__always)
    static func rewrite(_ ip: IPv4Packet, port: UInt16, checksum: PacketChecksumState) {
        let l4 = ip.transport
        let icmp = ICMPHeader(unchecked: l4)
        let oldID = icmp.identifier
        icmp.setIdentifier(port)
        // RFC 1624's result 0x0000 is wrong when the message is now all zeros (an echo reply
        // with identifier, sequence and data all 0 needs 0xffff); recompute in that rare case.
        let adjusted = checksum.checksumNotReady ? 0 : InternetChecksum.adjust(icmp.checksum, old: oldID, new: port)
        if adjusted == 0 {
            l4.storeBE16(0, at: ICMPHeader.checksumOffset)
            l4.storeBE16(InternetChecksum.checksum(UnsafeRawPointer(l4), count: ip.transportLength), at: ICMPHeader.checksumOffset)
        } else {
            l4.storeBE16(adjusted, at: ICMPHeader.checksumOffset)
        }
    }

    /// Only errors about echo queries: no error is ever sent about an error (RFC 1122 3.2.2).
    static func readQuoted(_ l4: UnsafeMutableRawPointer) -> (source: UInt16, destination: UInt16)? {
        let type = l4.loadBE8(at: 0)
        guard type == ICMPHeader.echoRequest || type == ICMPHeader.echoReply else { return nil }
        let identifier = l4.loadBE16(at: 4)
        return (identifier, identifier)
    }

    static func rewriteQuoted(_ l4: UnsafeMutableRawPointer, port: UInt16) {
        let old = l4.loadBE16(at: 4)
        l4.storeBE16(port, at: 4)
        l4.storeBE16(InternetChecksum.adjust(l4.loadBE16(at: 2), old: old, new: port), at: 2)
    }
}

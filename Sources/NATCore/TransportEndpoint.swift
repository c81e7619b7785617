// The transport part of a packet that the NAT translates: which protocol slot, the two
// ports (or the ICMP echo identifier) and the TCP flags. Reading it validates the
// transport header's lengths.

struct TransportEndpoint {
    var slot: Int
    var sourcePort: UInt16
    var destinationPort: UInt16
    var tcpFlags: TCPFlags
}

enum TransportReadResult {
    case endpoint(TransportEndpoint)
    /// Not a protocol with ports or identifiers (or an ICMP type the NAT does not map).
    case unsupported(DropReason)
    case malformed
}

extension IPv4Packet {
    /// Reads ports (or the echo identifier as both ports) from the transport header.
    @inline(__always)
    func readTransport() -> TransportReadResult {
        let l4 = transport
        let l4Length = transportLength
        switch header.protocolNumber {
        case IPProtocolNumber.tcp:
            guard l4Length >= TCPHeader.minimumLength else { return .malformed }
            let tcp = TCPHeader(unchecked: l4)
            guard tcp.dataOffset >= TCPHeader.minimumLength, tcp.dataOffset <= l4Length else { return .malformed }
            return .endpoint(TransportEndpoint(slot: 0, sourcePort: tcp.sourcePort, destinationPort: tcp.destinationPort, tcpFlags: tcp.flags))
        case IPProtocolNumber.udp:
            guard l4Length >= UDPHeader.length else { return .malformed }
            let udp = UDPHeader(unchecked: l4)
            guard udp.datagramLength >= UDPHeader.length, udp.datagramLength <= l4Length else { return .malformed }
            return .endpoint(TransportEndpoint(slot: 1, sourcePort: udp.sourcePort, destinationPort: udp.destinationPort, tcpFlags: []))
        case IPProtocolNumber.icmp:
            guard l4Length >= ICMPHeader.length else { return .malformed }
            let icmp = ICMPHeader(unchecked: l4)
            guard icmp.isQuery else { return .unsupported(.icmpUnsupported) }
            return .endpoint(TransportEndpoint(slot: 2, sourcePort: icmp.identifier, destinationPort: icmp.identifier, tcpFlags: []))
        default:
            return .unsupported(.protocolUnsupported)
        }
    }
}

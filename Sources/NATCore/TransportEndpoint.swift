// The transport part of a packet that the NAT translates: which protocol (TransportProtocol,
// the seam), the two ports (or the ICMP echo identifier) and the TCP flags. Reading it
// validates the transport header's lengths.

struct TransportEndpoint {
    var transport: TransportProtocol
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
        guard let transport = TransportProtocol(protocolNumber: header.protocolNumber) else {
            return .unsupported(.protocolUnsupported)
        }
        return transport.read(self.transport, length: transportLength)
    }
}

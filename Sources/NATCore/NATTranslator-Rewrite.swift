// Rewriting one address and one port (or echo identifier) and keeping every checksum right:
// the IP header here, the transport's identifier and checksum by its protocol's rules
// (TransportProtocol-*.swift, where the NFQA_SKB_CSUMNOTREADY and GSO cases are explained).

extension NATTranslator {
    @inline(__always)
    func rewrite(_ ip: IPv4Packet, transport: TransportProtocol, rewriteSource: Bool, address: IPv4Address, port: UInt16,
                 checksum: PacketChecksumState) {
        let header = ip.header
        let oldAddress = rewriteSource ? header.source.value : header.destination.value
        if rewriteSource { header.rewriteSource(address) } else { header.rewriteDestination(address) }
        transport.rewrite(ip, rewriteSource: rewriteSource, oldAddress: oldAddress, newAddress: address.value, port: port,
                          checksum: checksum)
    }
}

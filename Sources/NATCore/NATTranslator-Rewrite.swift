// Rewriting one address and one port (or echo identifier) and keeping every checksum right.
//
// KERNEL-FACTS fact 3: a packet flagged NFQA_SKB_CSUMNOTREADY carries only the pseudo-header
// sum in its TCP/UDP checksum field, and a verdict with payload makes the kernel treat the
// checksum as final, so such packets get a full checksum. A TCP GSO super-packet is the
// exception: with its checksum state reset, the kernel's software segmentation rewrites
// the pseudo-header and checksums every segment itself, so summing 64 KiB would be wasted.
// All other packets have valid checksums and get the RFC 1624 incremental update.

extension NATTranslator {
    @inline(__always)
    func rewrite(_ ip: IPv4Packet, slot: Int, rewriteSource: Bool, address: IPv4Address, port: UInt16, checksum: PacketChecksumState) {
        let header = ip.header
        let oldAddress = rewriteSource ? header.source.value : header.destination.value
        if rewriteSource { header.rewriteSource(address) } else { header.rewriteDestination(address) }
        let l4 = ip.transport
        let l4Length = ip.transportLength
        let full = checksum.checksumNotReady && !(checksum.isGSO && slot == 0)

        switch slot {
        case 0: // TCP
            let tcp = TCPHeader(unchecked: l4)
            let oldPort = rewriteSource ? tcp.sourcePort : tcp.destinationPort
            if rewriteSource { tcp.setSourcePort(port) } else { tcp.setDestinationPort(port) }
            if full {
                completeTransportChecksum(ip, checksumOffset: TCPHeader.checksumOffset, length: l4Length, isUDP: false)
            } else {
                var sum = InternetChecksum.adjust(tcp.checksum, oldAddress: oldAddress, newAddress: address.value)
                sum = InternetChecksum.adjust(sum, old: oldPort, new: port)
                l4.storeBE16(sum, at: TCPHeader.checksumOffset)
            }
        case 1: // UDP
            let udp = UDPHeader(unchecked: l4)
            let oldPort = rewriteSource ? udp.sourcePort : udp.destinationPort
            if rewriteSource { udp.setSourcePort(port) } else { udp.setDestinationPort(port) }
            if full {
                completeTransportChecksum(ip, checksumOffset: UDPHeader.checksumOffset, length: udp.datagramLength, isUDP: true)
            } else if udp.checksum != 0 { // 0: sender sent no checksum; keep it that way
                var sum = InternetChecksum.adjust(udp.checksum, oldAddress: oldAddress, newAddress: address.value)
                sum = InternetChecksum.adjust(sum, old: oldPort, new: port)
                l4.storeBE16(sum == 0 ? 0xffff : sum, at: UDPHeader.checksumOffset)
            }
        default: // ICMP echo: the checksum has no pseudo-header, only the identifier changes
            let icmp = ICMPHeader(unchecked: l4)
            let oldID = icmp.identifier
            icmp.setIdentifier(port)
            // RFC 1624's result 0x0000 is wrong when the message is now all zeros (an echo reply
            // with identifier, sequence and data all 0 needs 0xffff); recompute in that rare case.
            let adjusted = full ? 0 : InternetChecksum.adjust(icmp.checksum, old: oldID, new: port)
            if adjusted == 0 {
                l4.storeBE16(0, at: ICMPHeader.checksumOffset)
                l4.storeBE16(InternetChecksum.checksum(UnsafeRawPointer(l4), count: l4Length), at: ICMPHeader.checksumOffset)
            } else {
                l4.storeBE16(adjusted, at: ICMPHeader.checksumOffset)
            }
        }
    }

    /// Writes the full TCP/UDP checksum over the pseudo-header and `length` transport bytes.
    @inline(__always)
    func completeTransportChecksum(_ ip: IPv4Packet, checksumOffset: Int, length: Int, isUDP: Bool) {
        let header = ip.header
        let l4 = ip.transport
        l4.storeBE16(0, at: checksumOffset)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: header.source.value, destination: header.destination.value,
            protocolNumber: header.protocolNumber, length: length)
        var value = ~InternetChecksum.add(pseudo, InternetChecksum.sum(UnsafeRawPointer(l4), count: length))
        if isUDP, value == 0 { value = 0xffff }
        l4.storeBE16(value, at: checksumOffset)
    }
}

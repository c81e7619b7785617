// The UDP side of helpers: each datagram of a flow with a helper is shown to it whole, after
// the address translation. Its edits are applied to a copy; the core then fixes the UDP
// length, the IP total length and both checksums. There is no stream to keep in order and
// no edit log: a retransmitted request is simply inspected again. A datagram that grows past
// the path MTU is sent as it is: the kernel fragments it on the way out (masqd refragments
// nothing), or answers "fragmentation needed" when DF is set, like for any other datagram.

extension NATTranslator {
    func applyDatagramHelper(_ ip: IPv4Packet, sessionRow: Int32, outbound: Bool) -> TranslationVerdict {
        let connectionRow = sessions[sessionRow].helper
        let udp = UDPHeader(unchecked: ip.transport)
        // readTransport checked 8 <= UDP length <= the IP payload; bytes past the UDP length
        // (padding) are not the datagram's.
        let payloadCount = udp.datagramLength - UDPHeader.length
        let payload = UnsafeMutableRawPointer(ip.transport + UDPHeader.length)
        let sendIndex = outbound ? 0 : 1

        var context = helperContext(connectionRow: connectionRow, sessionRow: sessionRow, sendIndex: sendIndex,
                                    transport: .datagram, dataCount: payloadCount)
        stagedEditRoom = HelperLimits.editsPerDatagram
        stagedEditCount = 0
        let helperIndex = Int(helperConnections.pointer(connectionRow).pointee.helperIndex)
        // The helper reads the packet's own bytes: nothing is copied unless it edits.
        _ = configuration.helpers[helperIndex].helper.inspect(
            HelperData(bytes: UnsafeRawBufferPointer(start: payload, count: payloadCount), direction: context.direction), &context)
        guard stagedEditCount > 0 else { return .acceptRewritten }

        let header = ip.header
        let headerLength = header.headerLength + UDPHeader.length
        var total = headerLength + payloadCount
        for i in 0..<stagedEditCount { total += helperScratch.edits[i].length - (helperScratch.edits[i].end - helperScratch.edits[i].start) }
        guard total <= 65535 else {
            // Too big for one IPv4 packet: the datagram passes unedited.
            countHelperEvent(helperIndex, .limit)
            return .acceptRewritten
        }
        let out = helperScratch.packet
        out.copyMemory(from: header.bytes, byteCount: headerLength)
        var outputCount = headerLength
        var cursor = 0
        for i in 0..<stagedEditCount {
            appendStagedEdit(i, from: payload, cursor: &cursor, to: out, count: &outputCount)
        }
        (out + outputCount).copyMemory(from: payload + cursor, byteCount: payloadCount - cursor)
        outputCount += payloadCount - cursor

        let outIP = IPv4Header(unchecked: out)
        out.storeBE16(UInt16(total), at: 2)
        outIP.updateHeaderChecksum()
        let outUDP = out + header.headerLength
        let udpLength = total - header.headerLength
        outUDP.storeBE16(UInt16(udpLength), at: 4)
        // A sender that sent no checksum (0) gets none back; otherwise a full one.
        if udp.checksum != 0 {
            outUDP.storeBE16(0, at: UDPHeader.checksumOffset)
            let pseudo = InternetChecksum.pseudoHeaderSum(
                source: outIP.source.value, destination: outIP.destination.value, protocolNumber: IPProtocolNumber.udp,
                length: udpLength)
            let sum = ~InternetChecksum.add(pseudo, InternetChecksum.sum(UnsafeRawPointer(outUDP), count: udpLength))
            outUDP.storeBE16(sum == 0 ? 0xffff : sum, at: UDPHeader.checksumOffset)
        }
        return .acceptReplaced(UnsafeMutableRawBufferPointer(start: out, count: total))
    }
}

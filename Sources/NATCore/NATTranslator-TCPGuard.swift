// Which TCP packets may change their session: the checksum of SYN, FIN and RST segments is
// verified when it is final, and the remote endpoint's RST and FIN must fit the window the
// internal endpoint announced (TCPWindowTracking.swift). Data segments are only learned
// from: no checksum is summed for them, so the hot path stays as it was.

extension NATTranslator {
    /// Whether a TCP packet may change its session's state and timer; learns its window data.
    @inline(__always)
    func admitTCP(_ session: UnsafeMutablePointer<Session>, flags: TCPFlags, outbound: Bool, ip: IPv4Packet,
                  checksum: PacketChecksumState) -> Bool {
        let tcp = TCPHeader(unchecked: ip.transport)
        var scaleOffer: UInt8? = nil
        if flags.rawValue & (TCPFlags.syn.rawValue | TCPFlags.fin.rawValue | TCPFlags.rst.rawValue) != 0 {
            // A checksum the local stack has not finished yet (KERNEL-FACTS fact 3) says nothing.
            if !checksum.checksumNotReady, !checksum.isGSO, !tcpChecksumIsValid(ip) {
                counters[.ignoredBadChecksum] &+= 1
                return false
            }
            if flags.contains(.syn) { scaleOffer = TCPWindowTracking.scaleOffer(tcp) }
        }
        if outbound {
            session.pointee.tcpWindow.learnInternal(tcp, flags: flags, scaleOffer: scaleOffer)
            return true
        }
        switch session.pointee.tcpWindow.judgeRemote(tcp, flags: flags, payloadLength: ip.transportLength &- tcp.dataOffset,
                                                     scaleOffer: scaleOffer, established: session.pointee.tcpState == .established) {
        case .accept:
            return true
        case .outOfWindow:
            if flags.contains(.rst) { counters[.ignoredRSTOutOfWindow] &+= 1 } else { counters[.ignoredFINOutOfWindow] &+= 1 }
            return false
        case .inexactReset:
            counters[.ignoredRSTInWindow] &+= 1
            return false
        }
    }

    /// The TCP checksum over the pseudo-header and the whole segment sums to all ones.
    func tcpChecksumIsValid(_ ip: IPv4Packet) -> Bool {
        let header = ip.header
        let length = ip.transportLength
        let pseudo = InternetChecksum.pseudoHeaderSum(source: header.source.value, destination: header.destination.value,
                                                      protocolNumber: IPProtocolNumber.tcp, length: length)
        return InternetChecksum.add(pseudo, InternetChecksum.sum(UnsafeRawPointer(ip.transport), count: length)) == 0xffff
    }
}

import CFastPath
import NATCore

// A remote FIN or RST of a TCP flow the fast path carried comes to the engine (the BPF program
// hands control segments over), whose window tracking missed the offloaded stretch: judged on
// it, a real FIN or RST would be out of window and leave the session as it was. The worker
// first reads what the BPF program recorded of the flow's last segments from the map (one
// lookup per direction, for these rare segments only) and hands it to the core.

extension FastPath {
    /// An unfragmented TCP segment with FIN or RST; `bytes` is the IPv4 packet.
    @inline(__always)
    static func isTCPFinOrReset(_ bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= 20, bytes[9] == IPProtocolNumber.tcp else { return false }
        let headerLength = Int(bytes[0] & 0x0f) * 4
        guard bytes.count >= headerLength + 20, bytes[6] & 0x3f == 0, bytes[7] == 0 else { return false }
        return bytes[headerLength + 13] & 0x05 != 0
    }

    /// Worker, engine lock held: an inbound FIN or RST (`isTCPFinOrReset`) of an offloaded flow
    /// brings the core's window data up to the kernel's.
    func resyncWindow(_ bytes: UnsafeMutableRawBufferPointer, translator: NATTranslator) {
        let headerLength = Int(bytes[0] & 0x0f) * 4
        let key = masqd_fp_key(saddr: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self),
                               daddr: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self),
                               sport: bytes.loadUnaligned(fromByteOffset: headerLength, as: UInt16.self),
                               dport: bytes.loadUnaligned(fromByteOffset: headerLength + 2, as: UInt16.self),
                               protocol: IPProtocolNumber.tcp, direction: UInt8(MASQD_FP_INBOUND), pad: 0)
        guard let inbound = program.lookup(key), let outbound = program.lookup(inbound.reverse), outbound.tcp_known != 0 else { return }
        translator.fastPathResyncTCPWindow(internalAddress: UInt32(bigEndian: inbound.address), internalPort: UInt16(bigEndian: inbound.port),
                                           remoteAddress: UInt32(bigEndian: key.saddr), remotePort: UInt16(bigEndian: key.sport),
                                           internalAcknowledged: outbound.tcp_ack, internalWindow: outbound.tcp_window,
                                           remoteEnd: inbound.tcp_known != 0 ? inbound.tcp_seq_end : nil)
    }
}

import CFastPath
import NATCore

// One offloaded flow as the BPF program's map holds it: two entries, one per direction, in
// the C layout of masqd_fastpath_map.h (network byte order), for a session by its NATFlow.
// Pure: unit-tested byte by byte.

struct FastPathEntries {
    /// LAN → WAN: internal:port → remote, the source becomes external:port.
    var outboundKey: masqd_fp_key
    var outboundValue: masqd_fp_value
    /// WAN → LAN: remote → external:port, the destination becomes internal:port.
    var inboundKey: masqd_fp_key
    var inboundValue: masqd_fp_value

    init(_ flow: NATFlow, externalAddress: UInt32, externalPort: UInt16, wanIndex: UInt32) {
        let internalAddress = flow.internalEndpoint.address.value, internalPort = flow.internalEndpoint.port
        let remoteAddress = flow.remoteEndpoint.address.value, remotePort = flow.remoteEndpoint.port
        outboundKey = masqd_fp_key(saddr: internalAddress.bigEndian, daddr: remoteAddress.bigEndian,
                                   sport: internalPort.bigEndian, dport: remotePort.bigEndian,
                                   protocol: flow.protocolNumber, direction: UInt8(MASQD_FP_OUTBOUND), pad: 0)
        inboundKey = masqd_fp_key(saddr: remoteAddress.bigEndian, daddr: externalAddress.bigEndian,
                                  sport: remotePort.bigEndian, dport: externalPort.bigEndian,
                                  protocol: flow.protocolNumber, direction: UInt8(MASQD_FP_INBOUND), pad: 0)
        outboundValue = masqd_fp_value(reverse: inboundKey, address: externalAddress.bigEndian, port: externalPort.bigEndian, closed: 0,
                                       wan_ifindex: wanIndex, pad2: 0, last_seen_ns: 0, packets: 0, bytes: 0,
                                       tcp_ack: 0, tcp_seq_end: 0, tcp_window: 0, tcp_known: 0, pad3: 0)
        inboundValue = masqd_fp_value(reverse: outboundKey, address: internalAddress.bigEndian, port: internalPort.bigEndian, closed: 0,
                                      wan_ifindex: wanIndex, pad2: 0, last_seen_ns: 0, packets: 0, bytes: 0,
                                      tcp_ack: 0, tcp_seq_end: 0, tcp_window: 0, tcp_known: 0, pad3: 0)
    }
}

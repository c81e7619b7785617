import PacketCapture

// The capture a replay writes: classic pcap with nanosecond timestamps. One link type in the
// input: the same one, each packet keeping its link-layer header in front of its (translated)
// IP packet. Several: raw IP (LINKTYPE_RAW), the IP packets alone.

struct ReplayOutput {
    private(set) var writer: PcapWriter
    let keepsLinkHeaders: Bool

    init(inputLinkTypes: Set<LinkType>) {
        if inputLinkTypes.count == 1, let only = inputLinkTypes.first {
            writer = PcapWriter(linkType: only)
            keepsLinkHeaders = true
        } else {
            writer = PcapWriter(linkType: .raw)
            keepsLinkHeaders = false
        }
    }

    var linkType: LinkType { writer.linkType }
    var bytes: [UInt8] { writer.bytes }

    /// One record. `linkHeader` is left out of a raw-IP output; `cutShortBy` is what the
    /// capture left out of the packet (its original length minus its captured length).
    mutating func write(packetNumber: Int, timestamp: UInt64, linkHeader: ArraySlice<UInt8>, packet: some Collection<UInt8>,
                        cutShortBy: UInt32 = 0) throws(MasqdError) {
        let header = keepsLinkHeaders ? linkHeader : linkHeader.prefix(0)
        let length = UInt32(clamping: header.count + packet.count)
        let (originalLength, overflow) = length.addingReportingOverflow(cutShortBy)
        do {
            try writer.append(timestampNanoseconds: timestamp, linkHeader: header, packet: packet,
                              originalLength: overflow ? UInt32.max : originalLength)
        } catch {
            throw MasqdError("packet \(packetNumber): cannot be written: \(error.problem)")
        }
    }
}

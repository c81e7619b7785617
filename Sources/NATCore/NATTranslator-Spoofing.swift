// Sources that cannot legitimately arrive from the WAN side. Checked on every inbound packet,
// before anything else (a few integer compares), because a spoofed source reaches state:
//
// | source (from the WAN)            | drop reason      | why masqd drops it itself                              |
// |----------------------------------|------------------|--------------------------------------------------------|
// | the external (WAN) address       | spoofed_source   | it would match hairpin sessions (their remote is the   |
// |                                  |                  | external address) and port forwards; the kernel's own  |
// |                                  |                  | martian check does not stop it, because `rules install`|
// |                                  |                  | sets conf.all.accept_local=1 for hairpinning           |
// | inside a `--lan` prefix          | spoofed_source   | through a forward or an open mapping it reaches an     |
// |                                  |                  | internal host that then answers another internal host  |
// |                                  |                  | directly; rp_filter 0 or 2 (what hairpinning needs)    |
// |                                  |                  | lets it through                                        |
// | 0/8, 127/8, 224/4, 255.255.255.255 | martian_source | routing drops these only after raw PREROUTING, i.e.    |
// |                                  |                  | after masqd has opened a session for them              |
//
// Without `--lan`, "internal" means every source, so only the external address and the
// martians are judged. 240.0.0.0/4 (other than 255.255.255.255) is not a martian to Linux
// either and passes. A `--lan` prefix that overlaps addresses on the WAN side (an ISP router
// numbered inside it) makes that router's ICMP errors spoofed too: the same overlap already
// misroutes every reply to it, so it is a configuration error, not a case to serve.

extension NATTranslator {
    /// Why a packet from the WAN side must be dropped for its source alone, or nil.
    @inline(__always)
    func spoofedSourceFromWAN(_ source: IPv4Address) -> DropReason? {
        let value = source.value
        let top = value >> 24
        if top == 0 || top == 127 || top & 0xf0 == 0xe0 || value == UInt32.max { return .martianSource }
        if let external = configuration.externalAddress, value == external.value { return .spoofedSource }
        for address in configuration.sourcePools.addresses where address.value == value { return .spoofedSource }
        let prefixes = configuration.internalPrefixes
        for prefix in prefixes where prefix.contains(source) { return .spoofedSource }
        return nil
    }
}

extension NATTranslator {
    /// Judges a fragment by its IP header alone, before it reaches the reassembler, with the
    /// rules `translateInbound` applies first: from the WAN side, a spoofed or martian source,
    /// or (with `--lan`) a destination inside a LAN prefix, is dropped and counted here, so it
    /// cannot hold reassembly storage under the address it claims. nil: offer it to the
    /// reassembler. `fragment` holds at least an IPv4 header (`FragmentReassembler.isFragment` checked).
    public func screenFragment(_ fragment: UnsafeMutableRawBufferPointer, direction: PacketDirection) -> DropReason? {
        guard direction == .inbound, let base = fragment.baseAddress, fragment.count >= 20 else { return nil }
        let header = IPv4Header(unchecked: base)
        var reason = spoofedSourceFromWAN(header.source)
        if reason == nil, !configuration.internalPrefixes.isEmpty, header.destination != configuration.externalAddress,
           isInternal(header.destination) {
            reason = .inboundToInternalAddress
        }
        guard let reason else { return nil }
        counters.countDrop(reason)
        return reason
    }

    /// Counts a packet the engine refuses before translation: one forwarded out of the WAN
    /// with one of the router's own addresses as its source (from the LAN side, which only
    /// `accept_local` lets through routing). The translator cannot tell those from the router's
    /// own packets, which carry the same source, so the engine judges them by hook.
    public func refuseSpoofedForward() -> TranslationVerdict { drop(.spoofedSource) }
}

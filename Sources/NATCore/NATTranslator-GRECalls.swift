// Enhanced GRE (PPTP) through the call table (GRECallTable.swift). A GRE packet of version 1
// with a key whose call matches no row falls through to address-only NAT, as plain GRE does.

/// The enhanced GRE header (RFC 2637 4.1): flags with K set and version 1, protocol 0x880B,
/// the payload length, then the call ID of the receiving side at bytes 6-7. No checksum.
enum EnhancedGRE {
    static let protocolNumber: UInt8 = 47
    static let callIDOffset = 6

    /// The call ID, or nil when this is not enhanced GRE with a key.
    @inline(__always)
    static func callID(_ ip: IPv4Packet) -> UInt16? {
        guard ip.header.protocolNumber == protocolNumber, ip.transportLength >= 8 else { return nil }
        let l4 = ip.transport
        guard l4.loadBE8(at: 0) & 0x20 != 0, l4.loadBE8(at: 1) & 0x07 == 1, l4.loadBE16(at: 2) == 0x880b else { return nil }
        return l4.loadBE16(at: callIDOffset)
    }
}

extension NATTranslator {
    /// Outbound enhanced GRE of a confirmed call: only the source address changes (the key is
    /// the server's own call ID). Nil when no call matches.
    func translateOutboundGRECall(_ ip: IPv4Packet, external: IPv4Address, now: NATTime) -> TranslationVerdict? {
        guard let callID = EnhancedGRE.callID(ip) else { return nil }
        let row = liveGRECall(greCalls.find(server: ip.header.destination.value, serverCallID: callID), now: now)
        guard row >= 0, greCalls[row].client == ip.header.source.value else { return nil }
        greCalls[row].expires = now.nanoseconds &+ configuration.timeouts.other.nanoseconds
        ip.header.rewriteSource(external)
        counters[.outboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// Inbound enhanced GRE to a NAT call ID: to the internal host, with its own call ID.
    func translateInboundGRECall(_ ip: IPv4Packet, now: NATTime) -> TranslationVerdict? {
        guard let callID = EnhancedGRE.callID(ip) else { return nil }
        let row = liveGRECall(greCalls.find(server: ip.header.source.value, natCallID: callID), now: now)
        guard row >= 0 else { return nil }
        greCalls[row].expires = now.nanoseconds &+ configuration.timeouts.other.nanoseconds
        ip.header.rewriteDestination(IPv4Address(greCalls[row].client))
        ip.transport.storeBE16(greCalls[row].clientCallID, at: EnhancedGRE.callIDOffset)
        counters[.inboundTranslated] &+= 1
        return .acceptRewritten
    }

    /// `row` if it is live, else -1 (a stale one is removed).
    func liveGRECall(_ row: Int32, now: NATTime) -> Int32 {
        guard row >= 0 else { return -1 }
        guard greCalls[row].expires > now.nanoseconds else {
            greCalls.remove(row)
            return -1
        }
        return row
    }

    // MARK: for the PPTP helper (HelperContext)

    /// A NAT call ID for `client`'s call `clientCallID` to `server`: the same number when no
    /// other call to that server uses it, else a free one from a keyed-hash start. Nil when
    /// the table is full (after freeing expired rows), the host has its share (an eighth of
    /// the table, as for the other helper tables) or no ID is free.
    func expectGRECall(client: UInt32, server: UInt32, clientCallID: UInt16, now: NATTime) -> UInt16? {
        let expires = now.nanoseconds &+ configuration.timeouts.other.nanoseconds
        // One scan (the table is small, and only a call request asks): expired rows go, the host's are counted.
        var hostCalls = 0
        for i in 0..<greCalls.highWater where greCalls[Int32(i)].client != 0 {
            if liveGRECall(Int32(i), now: now) >= 0, greCalls[Int32(i)].client == client { hostCalls += 1 }
        }
        guard greCalls.count < greCalls.capacity, hostCalls < max(1, greCalls.capacity / 8) else { return nil }
        func free(_ id: UInt16) -> Bool { id != 0 && liveGRECall(greCalls.find(server: server, natCallID: id), now: now) < 0 }
        var natCallID = clientCallID
        if !free(natCallID) {
            var candidate = UInt16(truncatingIfNeeded: greCalls.hash(server: server, callID: clientCallID, serverSide: false))
            var found = false
            for _ in 0..<(greCalls.capacity + 1) where !found {
                // At most `capacity` IDs are taken for one server: one of capacity + 1 tries is free.
                if free(candidate) { found = true } else { candidate &+= 1 }
            }
            guard found else { return nil }
            natCallID = candidate
        }
        guard greCalls.insert(client: client, server: server, clientCallID: clientCallID, natCallID: natCallID, expires: expires) >= 0
        else { return nil }
        return natCallID
    }

    /// The server answered call `natCallID` with its own `serverCallID`: GRE can flow. Returns
    /// the internal host's call ID, or nil when no such call of `client` is live.
    func confirmGRECall(client: UInt32, server: UInt32, natCallID: UInt16, serverCallID: UInt16, now: NATTime) -> UInt16? {
        let row = liveGRECall(greCalls.find(server: server, natCallID: natCallID), now: now)
        guard row >= 0, greCalls[row].client == client else { return nil }
        greCalls.confirm(row, serverCallID: serverCallID)
        return greCalls[row].clientCallID
    }

    /// The internal host's call ID behind `natCallID`, or nil.
    func internalGRECallID(client: UInt32, server: UInt32, natCallID: UInt16, now: NATTime) -> UInt16? {
        let row = liveGRECall(greCalls.find(server: server, natCallID: natCallID), now: now)
        guard row >= 0, greCalls[row].client == client else { return nil }
        return greCalls[row].clientCallID
    }

    /// The NAT call ID of `client`'s call `clientCallID` to `server`, or nil. A scan: only
    /// control messages (Call-Clear-Request) ask, and the table is small.
    func natGRECallID(client: UInt32, server: UInt32, clientCallID: UInt16, now: NATTime) -> UInt16? {
        for i in 0..<greCalls.highWater {
            let call = greCalls[Int32(i)]
            if call.client == client, call.server == server, call.clientCallID == clientCallID,
               liveGRECall(Int32(i), now: now) >= 0 {
                return call.natCallID
            }
        }
        return nil
    }
}

// Expected flows: a helper announces that a related flow will arrive from outside (an FTP
// data connection, a DCC transfer, TFTP's reply from the server's new port, RTP and RTCP on
// a pair of ports). The core makes the mapping now, keeps it for the expectation's lifetime,
// and admits one flow from the given remote on it; filtering stays address-and-port
// dependent for everyone else.

extension NATTranslator {
    /// Makes (or reuses) the mapping of an internal endpoint and lets one flow from `remote`
    /// (any address when nil; any port when `remotePort` is 0) arrive on it. Returns the
    /// external port and how many expectations were added (0 when one was renewed), or nil
    /// when a limit refuses. Asking again for the same flow (a retransmitted request) renews
    /// the expectation instead of adding one.
    func expect(protocolNumber: UInt8, remote: IPv4Address?, remotePort: UInt16,
                internalAddress: IPv4Address, internalPort: UInt16, master: Int32) -> (port: UInt16, added: Int)? {
        guard let slot = ExternalPortTable.slot(protocolNumber), slot != TransportProtocol.icmpEcho.slot, internalPort != 0,
              isInternal(internalAddress) else { return nil }
        let hash = mappings.hash(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort)
        var row = mappings.find(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort, hash: hash)
        if row >= 0, renewExpectation(mapping: row, remote: remote, remotePort: remotePort, master: master) {
            return (mappings[row].externalPort, 0)
        }
        guard expectationRoom(master: master, needed: 1, host: internalAddress.value) else { return nil }
        if row < 0 {
            let paired = pairedIndex(for: internalAddress.value)
            guard mappings.count < mappings.capacity, paired != 0 || configuration.externalAddress != nil else { return nil }
            let port = allocatePort(slot: slot, internalPort: internalPort, hash: hash, address: Int(paired), host: internalAddress.value,
                                    reason: .expectation)
            guard port.reason == nil else { return nil }
            row = insertMapping(protocolNumber: protocolNumber, slot: slot, address: internalAddress.value, port: internalPort,
                                externalPort: port.port, hash: hash, externalIndex: paired, reason: .expectation)
        }
        guard addExpectation(mapping: row, remote: remote, remotePort: remotePort, master: master) else { return nil }
        return (mappings[row].externalPort, 1)
    }

    /// Expects a flow on each of two consecutive internal ports (RTP on an even port, RTCP on
    /// the next) through two consecutive external ports, the first even (RFC 3550 §11).
    /// Returns the first external port, or nil when the pair cannot be had: limits, or the
    /// second port mapped so that the pair cannot stay consecutive. When only the first is
    /// mapped already, its external port is used and only it is expected.
    func expectPair(protocolNumber: UInt8, remote: IPv4Address?, remotePort: UInt16,
                    internalAddress: IPv4Address, internalPort: UInt16, master: Int32) -> (port: UInt16, added: Int)? {
        guard let slot = ExternalPortTable.slot(protocolNumber), slot != TransportProtocol.icmpEcho.slot, internalPort != 0, internalPort < UInt16.max,
              isInternal(internalAddress) else { return nil }
        let hashes = (mappings.hash(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort),
                      mappings.hash(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort + 1))
        var rows = (mappings.find(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort, hash: hashes.0),
                    mappings.find(protocolNumber: protocolNumber, address: internalAddress.value, port: internalPort + 1, hash: hashes.1))
        let secondRemotePort: UInt16 = remotePort == 0 ? 0 : remotePort &+ 1
        if rows.0 >= 0 || rows.1 >= 0 {
            // Already mapped (the same offer again, or media that started first).
            guard rows.0 >= 0 else { return nil }
            let paired = rows.1 >= 0 && mappings[rows.1].externalPort == mappings[rows.0].externalPort &+ 1
            guard paired || rows.1 < 0 else { return nil }
            // Only the first port mapped (RTCP multiplexed on it, RFC 5761, or not started):
            // its external port is the one to offer; the second is left to the phone's own RTCP.
            let renewed = (renewExpectation(mapping: rows.0, remote: remote, remotePort: remotePort, master: master),
                           paired && renewExpectation(mapping: rows.1, remote: remote, remotePort: secondRemotePort, master: master))
            let needed = (renewed.0 ? 0 : 1) + (paired && !renewed.1 ? 1 : 0)
            guard expectationRoom(master: master, needed: needed, host: internalAddress.value) else { return nil }
            if !renewed.0, !addExpectation(mapping: rows.0, remote: remote, remotePort: remotePort, master: master) { return nil }
            if paired, !renewed.1, !addExpectation(mapping: rows.1, remote: remote, remotePort: secondRemotePort, master: master) {
                return nil
            }
            return (mappings[rows.0].externalPort, needed)
        }
        let paired = pairedIndex(for: internalAddress.value)
        guard expectationRoom(master: master, needed: 2, host: internalAddress.value), mappings.count + 2 <= mappings.capacity,
              paired != 0 || configuration.externalAddress != nil else { return nil }
        let allocated = allocatePort(slot: slot, internalPort: internalPort, hash: hashes.0, address: Int(paired), host: internalAddress.value,
                                     pair: true, reason: .expectation)
        guard allocated.reason == nil else { return nil }
        let port = allocated.port
        rows.0 = insertMapping(protocolNumber: protocolNumber, slot: slot, address: internalAddress.value, port: internalPort,
                               externalPort: port, hash: hashes.0, externalIndex: paired, reason: .expectation)
        rows.1 = insertMapping(protocolNumber: protocolNumber, slot: slot, address: internalAddress.value, port: internalPort + 1,
                               externalPort: port + 1, hash: hashes.1, externalIndex: paired, reason: .expectation)
        // Fresh mappings have no expectation yet: both adds succeed.
        _ = addExpectation(mapping: rows.0, remote: remote, remotePort: remotePort, master: master)
        _ = addExpectation(mapping: rows.1, remote: remote, remotePort: secondRemotePort, master: master)
        return (port, 2)
    }

    private func expectationRoom(master: Int32, needed: Int, host: UInt32) -> Bool {
        guard needed > 0 else { return true }
        guard expectations.count + needed <= expectations.capacity,
              expectations.count(master: master) + needed <= configuration.helperLimits.expectationsPerConnection else { return false }
        // The host's share, whichever of its connections asked (one host's many FTP sessions).
        var held = 0
        for i in 0..<expectations.capacity {
            let mapping = expectations[Int32(i)].mapping
            if mapping >= 0, mappings[mapping].internalAddress == host { held += 1 }
        }
        guard held + needed <= configuration.helperLimits.expectationsPerHost else {
            counters[.expectationsRefusedHostShare] &+= 1
            return false
        }
        return true
    }

    private func addExpectation(mapping row: Int32, remote: IPv4Address?, remotePort: UInt16, master: Int32) -> Bool {
        guard mappings[row].pendingExpectations < UInt8.max else {
            removeMappingIfUnused(row)
            return false
        }
        _ = expectations.insert(Expectation(
            expires: currentTime.nanoseconds &+ configuration.helperLimits.expectationTimeout.nanoseconds, mapping: row,
            master: master, remoteAddress: remote?.value ?? 0, remotePort: remotePort, anyRemoteAddress: remote == nil))
        mappings[row].pendingExpectations += 1
        return true
    }

    /// Renews a pending expectation identical to this one, if there is one.
    private func renewExpectation(mapping row: Int32, remote: IPv4Address?, remotePort: UInt16, master: Int32) -> Bool {
        guard mappings[row].pendingExpectations > 0 else { return false }
        let found = expectations.find(mapping: row, master: master, remoteAddress: remote?.value ?? 0,
                                      remotePort: remotePort, anyRemoteAddress: remote == nil)
        guard found >= 0 else { return false }
        expectations.renew(found, expires: currentTime.nanoseconds &+ configuration.helperLimits.expectationTimeout.nanoseconds)
        return true
    }

    /// Consumes an expectation admitting this remote endpoint to `mappingRow`, if any.
    func consumeExpectation(mappingRow: Int32, remoteAddress: UInt32, remotePort: UInt16, now: NATTime) -> Bool {
        guard mappings[mappingRow].pendingExpectations > 0 else { return false }
        let row = expectations.match(mapping: mappingRow, remoteAddress: remoteAddress, remotePort: remotePort, now: now.nanoseconds)
        guard row >= 0 else { return false }
        expectations.remove(row)
        mappings[mappingRow].pendingExpectations -= 1
        counters[.expectationsFulfilled] &+= 1
        return true
    }

    /// Frees expectations past their time, and their mappings if nothing else holds them.
    func expireExpectations(now: NATTime) {
        guard expectations.count > 0 else { return }
        for i in 0..<expectations.capacity {
            let e = expectations[Int32(i)]
            guard e.mapping >= 0, e.expires <= now.nanoseconds else { continue }
            expectations.remove(Int32(i))
            counters[.expectationsExpired] &+= 1
            var mapping = mappings[e.mapping]
            mapping.pendingExpectations -= 1
            mappings[e.mapping] = mapping
            if mapping.sessionCount == 0, mapping.pendingExpectations == 0, !mapping.isStatic { removeMapping(e.mapping, reason: .expired) }
        }
    }
}

// Saving the translation state and restoring it into a fresh translator (issue #8). Not on
// the packet path: these allocate freely.
//
// Restoring goes through the tables' own insertion paths and caps: a mapping takes its old
// external port again (if the configuration still allows it and no port forward now holds
// it), a session is opened as a packet would open it, then given its saved TCP state and
// what is left of its lifetime after the downtime. Port forwards' static mappings are not
// restored but made again from the configuration; a saved session of one is attached to the
// forward's mapping if that still exists unchanged. What does not fit is counted, not forced.

/// What a restore did with the saved sessions.
public struct NATStateRestoreSummary: Sendable, Equatable {
    public var sessionsRestored = 0
    /// Dynamic mappings made again (static ones come from the configuration).
    public var mappingsRestored = 0
    public var helperConnectionsRestored = 0
    /// Address-only translations restored (their failures count in the three below).
    public var addressOnlyFlowsRestored = 0
    /// Sessions whose lifetime ran out while the daemon was down.
    public var sessionsExpired = 0
    /// Sessions refused by a cap: the session or mapping table, the per-host cap, the helper table.
    public var sessionsNoRoom = 0
    /// Sessions the configuration no longer allows: the internal address is outside the
    /// internal prefixes, the external port outside the port range or now a port forward's,
    /// the forward changed, or a helper connection with edits lost its helper.
    public var sessionsNotInConfiguration = 0
    /// Redirected connections restored, and those not (expired while down, over the cap, or
    /// their local port no longer a redirect's).
    public var redirectsRestored = 0
    public var redirectsNotRestored = 0

    public init() {}

    public var sessionsNotRestored: Int { sessionsExpired + sessionsNoRoom + sessionsNotInConfiguration }
}

extension NATTranslator {
    /// The longest configured idle timeout.
    public var longestTimeout: NATDuration {
        let t = configuration.timeouts
        return max(t.udp, t.tcpEstablished, t.tcpTransitory, t.tcpClosed, t.icmp, t.other)
    }

    /// A copy of every live session at `now`, stamped with the wall-clock time `savedAt`
    /// (nanoseconds since 1970; the daemon reads the clock, the core does not).
    public func exportState(now: NATTime, savedAt: UInt64) -> NATStateSnapshot {
        let longest = longestTimeout
        var snapshot = NATStateSnapshot(savedAt: savedAt, externalAddress: configuration.externalAddress,
                                        longestTimeout: longest, heldCapacity: helperConnections.heldCapacity)
        guard configuration.externalAddress != nil else { return snapshot }
        snapshot.poolsFingerprint = configuration.sourcePools.fingerprint
        // Runs under the engine's lock, so it is kept lean: a flat row → record index instead
        // of a dictionary, and the record arrays sized once.
        var mappingIndex = [Int32](repeating: -1, count: mappings.capacity)
        snapshot.sessions.reserveCapacity(sessions.count)
        snapshot.mappings.reserveCapacity(mappings.count)
        for i in 0..<sessions.highWater {
            let session = sessions[Int32(i)]
            guard session.mapping >= 0, session.expires > now.nanoseconds else { continue }
            var helper: Int? = nil
            if session.helper >= 0 {
                guard let record = helperRecord(session.helper) else { continue } // cannot be read back: left out
                helper = snapshot.helperConnections.count
                snapshot.helperConnections.append(record)
            }
            let index: Int
            let known = mappingIndex[Int(session.mapping)]
            if known >= 0 {
                index = Int(known)
            } else {
                let m = mappings[session.mapping]
                index = snapshot.mappings.count
                mappingIndex[Int(session.mapping)] = Int32(index)
                snapshot.mappings.append(.init(protocolNumber: m.protocolNumber, internalEndpoint: IPv4Endpoint(m.internalAddress, m.internalPort),
                                               externalPort: m.externalPort, isStatic: m.isStatic, externalIndex: m.externalIndex))
            }
            // A timeout shortened by a reload leaves longer timers running: they end at the longest.
            let remaining = min(NATDuration(nanoseconds: session.expires - now.nanoseconds), longest)
            snapshot.sessions.append(.init(mapping: index, remoteEndpoint: IPv4Endpoint(session.remoteAddress, session.remotePort),
                                           lifetime: .init(tcpState: session.tcpState, tcpFlagsSeen: session.tcpFlagsSeen & ~TCPSessionState.udpSeenBoth,
                                                           remaining: remaining),
                                           helper: helper))
        }
        exportAddressOnly(into: &snapshot, now: now)
        snapshot.redirects = exportRedirects(now: now, longest: longest)
        return snapshot
    }

    /// A helper connection as a record, or nil when it would not read back (a name longer
    /// than the field, a stream the decoder refuses).
    func helperRecord(_ row: Int32) -> NATStateSnapshot.HelperRecord? {
        let connection = helperConnections.pointer(row)
        let name = Array(configuration.helpers[Int(connection.pointee.helperIndex)].helper.name.utf8)
        guard !name.isEmpty, name.count <= StateFormat.nameBytes, name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        var streams: [NATStateSnapshot.StreamRecord] = []
        for direction in 0..<2 {
            let s = stream(connection, direction).pointee
            let edits = helperConnections.edits(row, direction)
            var record = NATStateSnapshot.StreamRecord(
                nextSequence: s.nextSequence, acknowledged: s.acknowledged, baseDelta: s.baseDelta, started: s.started,
                acknowledgedSeen: s.acknowledgedSeen, heldRetransmissions: s.heldRetransmissions,
                held: Array(UnsafeRawBufferPointer(start: helperConnections.held(row, direction), count: Int(s.heldLength))))
            for i in 0..<Int(s.editCount) {
                let replacement = UnsafeRawBufferPointer(start: helperConnections.replacement(row, direction, i), count: Int(edits[i].length))
                record.edits.append(.init(start: edits[i].start, end: edits[i].end, cumulativeDelta: edits[i].cumulativeDelta,
                                          replacement: Array(replacement)))
            }
            guard record.problem == nil else { return nil }
            streams.append(record)
        }
        let state = Array(UnsafeRawBufferPointer(start: helperConnections.state(row), count: HelperConnectionTable.stateBytes))
        return .init(helperName: String(decoding: name, as: UTF8.self), clientIsInternal: connection.pointee.clientIsInternal,
                     streams: streams, state: state)
    }

    /// Restores `snapshot` into this translator, which must be fresh (no session yet). Every
    /// lifetime is shortened by `downtime`; sessions it ends are not restored. Refuses a
    /// snapshot made with another external address (a changed address flushes, as in the
    /// kernel) before changing anything.
    public func importState(_ snapshot: NATStateSnapshot, downtime: NATDuration, now: NATTime) throws(NATStateError) -> NATStateRestoreSummary {
        guard sessions.count == 0, expectations.count == 0, addressOnly.count == 0 else { throw .translatorNotEmpty }
        var summary = NATStateRestoreSummary()
        guard !snapshot.sessions.isEmpty || !snapshot.addressOnlyFlows.isEmpty || !snapshot.redirects.isEmpty else { return summary }
        guard let saved = snapshot.externalAddress, saved == configuration.externalAddress else {
            throw .externalAddressChanged(saved: snapshot.externalAddress ?? IPv4Address(0), now: configuration.externalAddress)
        }
        let before = counters
        currentTime = now // the time the restored rows' creation events carry
        restoring = true
        defer { restoring = false }
        restoreRedirects(snapshot.redirects, downtime: downtime, now: now, summary: &summary)
        importAddressOnly(snapshot, downtime: downtime, now: now, summary: &summary)

        // Mappings first: a row for each, or the count a failure goes to.
        var rows = [Int32](repeating: -1, count: snapshot.mappings.count)
        var refusedForRoom = [Bool](repeating: false, count: snapshot.mappings.count)
        for (i, m) in snapshot.mappings.enumerated() {
            let row = restoreMapping(m, poolsFingerprint: snapshot.poolsFingerprint)
            rows[i] = row.row
            refusedForRoom[i] = row.noRoom
            // Pinned while its sessions are restored: removing a refused one must not free it.
            if row.row >= 0 { mappings[row.row].sessionCount += 1 }
        }

        for record in snapshot.sessions {
            let lifetime = record.lifetime
            guard lifetime.remaining > downtime else { summary.sessionsExpired += 1; continue }
            let mappingRow = rows[record.mapping]
            guard mappingRow >= 0 else {
                if refusedForRoom[record.mapping] { summary.sessionsNoRoom += 1 } else { summary.sessionsNotInConfiguration += 1 }
                continue
            }
            // Checked here: a full table would make openSession sweep for expired rows each time.
            guard sessions.count < sessions.capacity else { summary.sessionsNoRoom += 1; continue }
            let m = snapshot.mappings[record.mapping]
            let remote = record.remoteEndpoint
            let hash = sessions.hash(mapping: mappingRow, remoteAddress: remote.address.value, remotePort: remote.port)
            let opened = openSession(mappingRow: mappingRow, remoteAddress: remote.address.value, remotePort: remote.port,
                                     hash: hash, protocolNumber: m.protocolNumber,
                                     inbound: lifetime.tcpFlagsSeen & TCPSessionState.openedInbound != 0, now: now)
            guard opened.reason == nil else { summary.sessionsNoRoom += 1; continue }
            let session = sessions.pointer(opened.row)
            session.pointee.tcpState = lifetime.tcpState
            session.pointee.tcpFlagsSeen = lifetime.tcpFlagsSeen
            // The window is not saved: relearned from the internal endpoint's next packet, and
            // until then a remote RST or FIN cannot end the session (TCPWindowTracking.swift).
            session.pointee.tcpWindow.flags = TCPWindowTracking.restored
            let remaining = lifetime.remaining(after: downtime, protocolNumber: m.protocolNumber, timeouts: configuration.timeouts)
            session.pointee.expires = now.nanoseconds &+ remaining.nanoseconds
            if let helper = record.helper {
                switch restoreHelperConnection(snapshot.helperConnections[helper], sessionRow: opened.row) {
                case .restored: summary.helperConnectionsRestored += 1
                case .notNeeded: break
                case .impossible:
                    // Its stream was edited: without the edit log its numbers cannot be mapped.
                    removeSession(opened.row, reason: .refused)
                    summary.sessionsNotInConfiguration += 1
                    continue
                }
            }
            summary.sessionsRestored += 1
            if recordsEstablishedSessions { recordRestoredEstablished(opened.row) }
        }
        for (i, row) in rows.enumerated() where row >= 0 {
            mappings[row].sessionCount -= 1
            guard !snapshot.mappings[i].isStatic else { continue }
            removeMappingIfUnused(row)
            if mappings[row].protocolNumber != 0 { summary.mappingsRestored += 1 }
        }
        // Restored sessions were not created here: the counters say what traffic did.
        counters[.sessionsCreated] = before[.sessionsCreated]
        counters[.sessionsOpenedInbound] = before[.sessionsOpenedInbound]
        return summary
    }

    /// The row of a saved mapping in this translator (made again, or a port forward's), or
    /// -1 and whether a cap (rather than the configuration) refused it.
    private func restoreMapping(_ m: NATStateSnapshot.MappingRecord, poolsFingerprint: UInt32) -> (row: Int32, noRoom: Bool) {
        guard let slot = ExternalPortTable.slot(m.protocolNumber) else { return (-1, false) }
        // On a pool address: only under the same pools (the index means the same address).
        let pools = configuration.sourcePools
        guard m.externalIndex == 0 || (poolsFingerprint == pools.fingerprint && Int(m.externalIndex) <= pools.addresses.count)
        else { return (-1, false) }
        let address = Int(m.externalIndex)
        let internalAddress = m.internalEndpoint.address.value, internalPort = m.internalEndpoint.port
        let hash = mappings.hash(protocolNumber: m.protocolNumber, address: internalAddress, port: internalPort)
        let existing = mappings.find(protocolNumber: m.protocolNumber, address: internalAddress, port: internalPort, hash: hash)
        if m.isStatic {
            guard existing >= 0, mappings[existing].isStatic, mappings[existing].externalPort == m.externalPort else { return (-1, false) }
            return (existing, false)
        }
        guard existing < 0, isInternal(IPv4Address(internalAddress)),
              hasPortBlocks || configuration.ports.range(for: internalPort, slot: slot).contains(m.externalPort),
              externalPorts.owner(slot: slot, port: m.externalPort, address: address) < 0,
              !localPorts.contains(slot: slot, port: m.externalPort) else { return (-1, false) } // the router's now
        guard mappings.count < mappings.capacity else { return (-1, true) }
        // Port blocks: the mapping's block becomes (or is) its host's; a block another host
        // has already (the block size changed since the save), or a port in no block, leaves it out.
        if hasPortBlocks, !adoptBlock(port: m.externalPort, address: address, host: internalAddress) {
            counters[.portBlockRestoreConflicts] &+= 1
            return (-1, false)
        }
        let row = mappings.insert(Mapping(
            internalAddress: internalAddress, hash: hash, sessionCount: 0,
            internalPort: internalPort, externalPort: m.externalPort, protocolNumber: m.protocolNumber, externalIndex: m.externalIndex))
        externalPorts.claim(slot: slot, port: m.externalPort, row: row, address: address)
        recordMapping(.mappingCreated, row, reason: .restored)
        return (row, false)
    }

    private enum HelperRestore { case restored, notNeeded, impossible }

    /// Puts a saved helper connection's state into the one `openSession` attached (by the
    /// configuration's helper ports). Without the same helper, a stream with no edits and no
    /// held bytes goes on as one the helper picks up mid-stream; an edited one cannot.
    private func restoreHelperConnection(_ record: NATStateSnapshot.HelperRecord, sessionRow: Int32) -> HelperRestore {
        let row = sessions[sessionRow].helper
        let sameHelper = row >= 0
            && configuration.helpers[Int(helperConnections.pointer(row).pointee.helperIndex)].helper.name == record.helperName
        guard sameHelper, record.streams.allSatisfy({ $0.held.count <= helperConnections.heldCapacity }) else {
            return record.streams.contains(where: \.carriesEdits) ? .impossible : .notNeeded
        }
        let connection = helperConnections.pointer(row)
        connection.pointee.clientIsInternal = record.clientIsInternal
        for (direction, s) in record.streams.enumerated() {
            let target = stream(connection, direction)
            target.pointee = StreamState(
                nextSequence: s.nextSequence, started: s.started, heldLength: UInt16(s.held.count),
                heldRetransmissions: s.heldRetransmissions, editCount: UInt8(s.edits.count), baseDelta: s.baseDelta,
                acknowledged: s.acknowledged, acknowledgedSeen: s.acknowledgedSeen)
            copy(s.held, to: helperConnections.held(row, direction))
            let edits = helperConnections.edits(row, direction)
            for (i, edit) in s.edits.enumerated() {
                edits[i] = StreamEdit(start: edit.start, end: edit.end, cumulativeDelta: edit.cumulativeDelta, length: UInt8(edit.replacement.count))
                copy(edit.replacement, to: helperConnections.replacement(row, direction, i))
            }
        }
        copy(record.state, to: helperConnections.state(row))
        return .restored
    }

    private func copy(_ bytes: [UInt8], to destination: UnsafeMutableRawPointer) {
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { destination.copyMemory(from: base, byteCount: source.count) }
        }
    }
}

// Reading a state file: every byte is checked — length, magic, version, checksum, each
// field's range, reserved bytes, and the records' consistency with each other — before a
// snapshot exists, so a translator is never given half of a file.

extension NATStateSnapshot {
    public init(decoding bytes: [UInt8]) throws(NATStateError) {
        // Fewer bytes than the magic are a truncated file only if they begin it.
        let head = min(bytes.count, StateFormat.magic.count)
        guard bytes[0..<head].elementsEqual(StateFormat.magic[0..<head]) else { throw .notAStateFile }
        guard bytes.count >= StateFormat.headerBytes + StateFormat.checksumBytes else {
            throw .truncated(length: bytes.count, expected: StateFormat.headerBytes + StateFormat.checksumBytes)
        }
        var header = ByteReader(bytes, at: StateFormat.magic.count)
        let version = header.u16()
        guard (StateFormat.oldestReadable...StateFormat.version).contains(version) else { throw .unsupportedVersion(version) }
        let heldCapacity = Int(header.u16())
        let editLog = header.u8(), maxReplacement = header.u8(), stateBytes = header.u16()
        let savedAt = header.u64()
        let address = header.u32()
        let reserved1 = header.u32() // version 3: the pools' fingerprint
        let longest = header.u64()
        let mappingCount = Int(header.u32()), sessionCount = Int(header.u32()), helperCount = Int(header.u32())
        let addressOnlyCount = Int(header.u32()) // reserved (0) before version 3

        // Before version 3 these fields are reserved: refused as such, before they count as lengths.
        guard version >= 3 || (reserved1 == 0 && addressOnlyCount == 0) else { throw .invalidHeader("reserved bytes are not zero") }
        // The length the counts announce; checked before anything that could be a symptom of truncation.
        let recordsEnd = StateFormat.headerBytes + mappingCount * StateFormat.mappingBytes + sessionCount * StateFormat.sessionBytes
            + helperCount * StateFormat.helperBytes(heldCapacity: heldCapacity) + addressOnlyCount * StateFormat.addressOnlyBytes
        // Version 4: the redirect records' count follows the address-only records.
        let redirectCount = try Self.redirectCount(bytes, version: version, at: recordsEnd)
        let expected = recordsEnd + (version >= 4 ? 4 + redirectCount * StateFormat.redirectBytes : 0) + StateFormat.checksumBytes
        guard bytes.count >= expected else { throw .truncated(length: bytes.count, expected: expected) }
        guard bytes.count == expected else { throw .trailingBytes(length: bytes.count, expected: expected) }
        var trailer = ByteReader(bytes, at: expected - StateFormat.checksumBytes)
        guard StateFormat.checksum(bytes[0..<(expected - StateFormat.checksumBytes)]) == trailer.u64() else { throw .checksumMismatch }

        guard Int(editLog) == HelperLimits.editLog, Int(maxReplacement) == HelperLimits.maxReplacement,
              Int(stateBytes) == HelperConnectionTable.stateBytes else {
            throw .invalidHeader("helper layout \(editLog) edits × \(maxReplacement) bytes, \(stateBytes) state bytes; this masqd uses \(HelperLimits.editLog) × \(HelperLimits.maxReplacement), \(HelperConnectionTable.stateBytes)")
        }
        guard heldCapacity % 8 == 0, heldCapacity <= StateFormat.maxHeldCapacity else {
            throw .invalidHeader("held bytes per direction \(heldCapacity) (a multiple of 8 up to \(StateFormat.maxHeldCapacity))")
        }
        // Version 3 is written only when it has something of its own (a pools fingerprint, or
        // address-only records): without either it would not read back as the same bytes.
        guard version != 3 || reserved1 != 0 || addressOnlyCount > 0 else {
            throw .invalidHeader("version 3 without pools or address-only records")
        }
        guard longest > 0 else { throw .invalidHeader("longest timeout is 0") }
        guard address != 0 || mappingCount + sessionCount + helperCount + addressOnlyCount + redirectCount == 0 else {
            throw .invalidHeader("records but no external address")
        }
        self.init(savedAt: savedAt, externalAddress: address == 0 ? nil : IPv4Address(address),
                  longestTimeout: NATDuration(nanoseconds: longest), heldCapacity: heldCapacity)
        poolsFingerprint = version >= 3 ? reserved1 : 0

        var reader = ByteReader(bytes, at: StateFormat.headerBytes)
        mappings.reserveCapacity(mappingCount)
        for index in 0..<mappingCount { mappings.append(try Self.readMapping(&reader, index: index, version: version)) }
        // The fingerprint is written exactly when a mapping is on a pool address.
        guard mappings.contains(where: { $0.externalIndex != 0 }) == (poolsFingerprint != 0) else {
            throw .invalidHeader(poolsFingerprint != 0 ? "a pools fingerprint but no mapping on a pool address"
                                                      : "a mapping on a pool address but no pools fingerprint")
        }
        sessions.reserveCapacity(sessionCount)
        for index in 0..<sessionCount {
            sessions.append(try Self.readSession(&reader, index: index, version: version, mappings: mappings, helperCount: helperCount,
                                                 longest: longestTimeout))
        }
        helperConnections.reserveCapacity(helperCount)
        for index in 0..<helperCount {
            helperConnections.append(try Self.readHelper(&reader, index: index, heldCapacity: heldCapacity))
        }
        addressOnlyFlows.reserveCapacity(addressOnlyCount)
        for index in 0..<addressOnlyCount {
            addressOnlyFlows.append(try AddressOnlyRecord(&reader, index: index, longest: longestTimeout))
        }
        // Version 2 is written only for a datagram helper's record: a file without one would
        // encode back as version 1, so it is not a file masqd writes (found by the state fuzzer).
        if version == 2, !sessions.contains(where: { $0.helper != nil && mappings[$0.mapping].protocolNumber != IPProtocolNumber.tcp }) {
            throw .invalidHeader("version 2 without a datagram helper record")
        }
        if version >= 4 { _ = reader.u32() } // the count, read above
        redirects = try Self.readRedirects(&reader, count: redirectCount, longest: longestTimeout)
        try checkConsistency()
    }

    private static func readMapping(_ r: inout ByteReader, index: Int, version: UInt16) throws(NATStateError) -> MappingRecord {
        func bad(_ reason: String) -> NATStateError { .invalidRecord(kind: "mapping", index: index, reason: reason) }
        let address = r.u32(), internalPort = r.u16(), externalPort = r.u16(), protocolNumber = r.u8(), flags = r.u8()
        let externalIndex = r.u16() // reserved before version 3
        guard ExternalPortTable.slot(protocolNumber) != nil else { throw bad("protocol \(protocolNumber) has no ports") }
        guard flags & ~StateFormat.staticFlag == 0, version >= 3 || externalIndex == 0 else { throw bad("unknown flags or reserved bytes set") }
        guard externalIndex <= SourceAddressPools.maximumAddresses else { throw bad("external address index \(externalIndex)") }
        let isStatic = flags & StateFormat.staticFlag != 0
        guard !isStatic || externalIndex == 0 else { throw bad("a port forward on a pool address") }
        if protocolNumber != IPProtocolNumber.icmp {
            guard internalPort != 0, externalPort != 0 else { throw bad("port 0") }
        } else {
            guard !isStatic else { throw bad("a static ICMP mapping") }
        }
        return MappingRecord(protocolNumber: protocolNumber, internalEndpoint: IPv4Endpoint(address, internalPort),
                             externalPort: externalPort, isStatic: isStatic, externalIndex: UInt8(externalIndex))
    }

    private static func readSession(_ r: inout ByteReader, index: Int, version: UInt16, mappings: [MappingRecord], helperCount: Int,
                                    longest: NATDuration) throws(NATStateError) -> SessionRecord {
        func bad(_ reason: String) -> NATStateError { .invalidRecord(kind: "session", index: index, reason: reason) }
        let mapping = Int(r.u32()), remoteAddress = r.u32(), remaining = r.u64(), remotePort = r.u16()
        let stateValue = r.u8(), flagsSeen = r.u8(), helper = r.u32()
        guard mapping < mappings.count else { throw bad("mapping \(mapping) of \(mappings.count)") }
        guard remaining > 0, remaining <= longest.nanoseconds else {
            throw bad("remaining lifetime \(remaining) ns outside 1…\(longest.nanoseconds)")
        }
        guard let tcpState = TCPSessionState(rawValue: stateValue) else { throw bad("TCP state \(stateValue)") }
        let protocolNumber = mappings[mapping].protocolNumber
        if protocolNumber == IPProtocolNumber.tcp {
            guard tcpState != .none, flagsSeen & ~(TCPSessionState.finBoth | TCPSessionState.openedInbound) == 0 else {
                throw bad("TCP state \(stateValue) with flags \(flagsSeen)")
            }
        } else {
            guard tcpState == .none, flagsSeen & ~TCPSessionState.openedInbound == 0 else {
                throw bad("TCP state \(stateValue) with flags \(flagsSeen) on protocol \(protocolNumber)")
            }
        }
        guard (protocolNumber == IPProtocolNumber.icmp) == (remotePort == 0) else { throw bad("remote port \(remotePort)") }
        var helperIndex: Int? = nil
        if helper != StateFormat.noHelper {
            // Version 1 had stream helpers only; version 2 adds datagram ones.
            let helperProtocol = protocolNumber == IPProtocolNumber.tcp || (version >= 2 && protocolNumber == IPProtocolNumber.udp)
            guard Int(helper) < helperCount, helperProtocol else {
                throw bad("helper connection \(helper) of \(helperCount)")
            }
            helperIndex = Int(helper)
        }
        return SessionRecord(mapping: mapping, remoteEndpoint: IPv4Endpoint(remoteAddress, remotePort),
                             lifetime: LifetimeRecord(tcpState: tcpState, tcpFlagsSeen: flagsSeen, remaining: NATDuration(nanoseconds: remaining)),
                             helper: helperIndex)
    }

    private static func readHelper(_ r: inout ByteReader, index: Int, heldCapacity: Int) throws(NATStateError) -> HelperRecord {
        func bad(_ reason: String) -> NATStateError { .invalidRecord(kind: "helper connection", index: index, reason: reason) }
        let nameField = r.bytes(StateFormat.nameBytes)
        let nameBytes = Array(nameField.prefix(while: { $0 != 0 }))
        guard !nameBytes.isEmpty, nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }),
              nameField.dropFirst(nameBytes.count).allSatisfy({ $0 == 0 }) else { throw bad("helper name is not zero-padded ASCII") }
        let clientIsInternal = r.u8()
        guard clientIsInternal <= 1, r.bytes(3).allSatisfy({ $0 == 0 }) else { throw bad("client flag or reserved bytes") }
        var streams: [StreamRecord] = []
        for direction in 0..<2 {
            func badStream(_ reason: String) -> NATStateError { bad("stream \(direction): \(reason)") }
            var s = StreamRecord()
            s.nextSequence = r.u32()
            s.acknowledged = r.u32()
            s.baseDelta = Int32(bitPattern: r.u32())
            let heldLength = Int(r.u16())
            let started = r.u8(), acknowledgedSeen = r.u8()
            s.heldRetransmissions = r.u8()
            let editCount = Int(r.u8())
            guard started <= 1, acknowledgedSeen <= 1, r.u16() == 0 else { throw badStream("flags or reserved bytes") }
            s.started = started == 1
            s.acknowledgedSeen = acknowledgedSeen == 1
            guard heldLength <= heldCapacity else { throw badStream("\(heldLength) held bytes, room for \(heldCapacity)") }
            guard editCount <= HelperLimits.editLog else { throw badStream("\(editCount) edits, room for \(HelperLimits.editLog)") }
            var lengths: [Int] = []
            for i in 0..<HelperLimits.editLog {
                let start = r.u32(), end = r.u32(), cumulative = Int32(bitPattern: r.u32()), length = Int(r.u8())
                guard i < editCount else {
                    guard start == 0, end == 0, cumulative == 0, length == 0 else { throw badStream("unused edit \(i) not zero") }
                    continue
                }
                guard length <= HelperLimits.maxReplacement else { throw badStream("edit \(i) replaces with \(length) bytes") }
                s.edits.append(EditRecord(start: start, end: end, cumulativeDelta: cumulative, replacement: []))
                lengths.append(length)
            }
            for i in 0..<HelperLimits.editLog {
                let area = r.bytes(HelperLimits.maxReplacement)
                let used = i < editCount ? lengths[i] : 0
                guard area[used...].allSatisfy({ $0 == 0 }) else { throw badStream("bytes after replacement \(i) not zero") }
                if i < editCount { s.edits[i].replacement = Array(area[0..<used]) }
            }
            let held = r.bytes(heldCapacity)
            guard held[heldLength...].allSatisfy({ $0 == 0 }) else { throw badStream("bytes after the held ones not zero") }
            s.held = Array(held[0..<heldLength])
            if let problem = s.problem { throw badStream(problem) }
            streams.append(s)
        }
        let state = r.bytes(HelperConnectionTable.stateBytes)
        return HelperRecord(helperName: String(decoding: nameBytes, as: UTF8.self), clientIsInternal: clientIsInternal == 1,
                            streams: streams, state: state)
    }

    /// What the translator's tables guarantee must hold of the records too: one mapping per
    /// internal endpoint and per external port, one session per remote of a mapping, every
    /// mapping and helper connection owned by sessions (a helper connection by exactly one).
    private func checkConsistency() throws(NATStateError) {
        var internalEndpoints = Set<UInt64>(), externalPorts = Set<UInt32>()
        for (index, m) in mappings.enumerated() {
            let key = UInt64(m.protocolNumber) << 48 | UInt64(m.internalEndpoint.address.value) << 16 | UInt64(m.internalEndpoint.port)
            let external = UInt32(m.externalIndex) << 24 | UInt32(m.protocolNumber) << 16 | UInt32(m.externalPort)
            guard internalEndpoints.insert(key).inserted, externalPorts.insert(external).inserted
            else { throw .invalidRecord(kind: "mapping", index: index, reason: "a second mapping of its internal endpoint or external port") }
        }
        var used = [Bool](repeating: false, count: mappings.count)
        var helperOwners = [Int](repeating: -1, count: helperConnections.count)
        var remotes = Set<SessionKey>()
        for (index, s) in sessions.enumerated() {
            used[s.mapping] = true
            guard remotes.insert(SessionKey(mapping: s.mapping, remote: s.remoteEndpoint)).inserted else {
                throw .invalidRecord(kind: "session", index: index, reason: "a second session of its mapping with the same remote endpoint")
            }
            if let helper = s.helper {
                guard helperOwners[helper] < 0 else {
                    throw .invalidRecord(kind: "session", index: index, reason: "helper connection \(helper) belongs to session \(helperOwners[helper])")
                }
                helperOwners[helper] = index
            }
        }
        if let index = used.firstIndex(of: false) { throw .invalidRecord(kind: "mapping", index: index, reason: "no session uses it") }
        if let index = helperOwners.firstIndex(of: -1) {
            throw .invalidRecord(kind: "helper connection", index: index, reason: "no session uses it")
        }
    }

    private struct SessionKey: Hashable {
        var mapping: Int
        var remote: IPv4Endpoint
    }
}

/// Reads big-endian integers from a byte array whose length the caller has checked.
struct ByteReader {
    let bytes: [UInt8]
    var position: Int

    init(_ bytes: [UInt8], at position: Int) {
        self.bytes = bytes
        self.position = position
    }

    mutating func u8() -> UInt8 {
        defer { position += 1 }
        return bytes[position]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }
    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
    mutating func u64() -> UInt64 { UInt64(u32()) << 32 | UInt64(u32()) }
    mutating func bytes(_ n: Int) -> [UInt8] {
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }
}

import CounterSet
// Application helpers, the part common to both kinds: finding a flow's helper, the edits a
// helper stages while it inspects, its event counters, and the dispatch to the stream
// engine (NATTranslator-HelperStream.swift) or the datagram one
// (NATTranslator-HelperDatagram.swift). Expected flows: NATTranslator-Expectations.swift.

/// An edit staged by a helper during one `inspect` call (offsets into the inspected bytes).
struct StagedEdit {
    var start: Int
    var end: Int
    var length: Int
}

extension NATTranslator {
    // MARK: called by HelperContext

    func stageEdit(_ range: Range<Int>, dataCount: Int, _ write: (inout HelperTextWriter) -> Void) -> Bool {
        guard stagedEditCount < stagedEditRoom, range.lowerBound >= 0, range.upperBound <= dataCount else { return false }
        if stagedEditCount > 0, helperScratch.edits[stagedEditCount - 1].end > range.lowerBound { return false }
        var writer = HelperTextWriter(base: helperScratch.replacement(stagedEditCount), capacity: HelperLimits.maxReplacement)
        write(&writer)
        guard !writer.overflowed else { return false }
        helperScratch.edits[stagedEditCount] = StagedEdit(start: range.lowerBound, end: range.upperBound, length: writer.count)
        stagedEditCount += 1
        return true
    }

    /// Appends to `output` (its first `count` bytes written) the inspected bytes from `cursor`
    /// up to staged edit `i`, then the edit's replacement; `cursor` moves past the bytes it
    /// replaces. The datagram and the stream engine build their output with it.
    @inline(__always)
    func appendStagedEdit(_ i: Int, from source: UnsafeRawPointer, cursor: inout Int, to output: UnsafeMutableRawPointer,
                          count: inout Int) {
        let edit = helperScratch.edits[i]
        (output + count).copyMemory(from: source + cursor, byteCount: edit.start - cursor)
        count += edit.start - cursor
        (output + count).copyMemory(from: helperScratch.replacement(i), byteCount: edit.length)
        count += edit.length
        cursor = edit.end
    }

    func countHelperEvent(_ helper: Int, _ event: HelperEvent) {
        counters.helperEvents[helper].count(event)
    }

    /// The helper registered for flows of `protocolNumber` dialled to `port`, if any.
    @inline(__always)
    func helperIndex(protocolNumber: UInt8, port: UInt16) -> Int? {
        let wanted = HelperPort(protocolNumber: protocolNumber, port: port)
        for (index, registration) in configuration.helpers.enumerated() where registration.ports.contains(wanted) {
            return index
        }
        return nil
    }

    // MARK: the packet path

    /// Runs after the address translation of a packet of a flow that has a helper.
    func applyHelper(_ ip: IPv4Packet, sessionRow: Int32, outbound: Bool, now: NATTime) -> TranslationVerdict {
        if ip.header.protocolNumber == IPProtocolNumber.udp {
            return applyDatagramHelper(ip, sessionRow: sessionRow, outbound: outbound)
        }
        return applyStreamHelper(ip, sessionRow: sessionRow, outbound: outbound, now: now)
    }

    /// What the helper of `connectionRow` is told about its flow.
    func helperContext(connectionRow: Int32, sessionRow: Int32, sendIndex: Int, transport: HelperTransport,
                       dataCount: Int) -> HelperContext {
        let connection = helperConnections.pointer(connectionRow)
        let session = sessions[sessionRow]
        let mapping = mappings[session.mapping]
        let clientIsInternal = connection.pointee.clientIsInternal
        return HelperContext(
            direction: (sendIndex == 0) == clientIsInternal ? .fromClient : .fromServer, clientIsInternal: clientIsInternal,
            internalAddress: IPv4Address(mapping.internalAddress), internalPort: mapping.internalPort,
            externalAddress: externalAddress(index: mapping.externalIndex) ?? IPv4Address(0), externalPort: mapping.externalPort,
            remoteAddress: IPv4Address(session.remoteAddress), remotePort: session.remotePort,
            state: UnsafeMutableRawBufferPointer(start: helperConnections.state(connectionRow), count: HelperConnectionTable.stateBytes),
            transport: transport, translator: self, sessionRow: sessionRow, helperIndex: Int(connection.pointee.helperIndex),
            dataCount: dataCount, holdCapacity: transport == .stream ? helperConnections.heldCapacity : 0)
    }
}

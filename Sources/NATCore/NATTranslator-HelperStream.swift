// The TCP side of helpers: running them on their connections' byte streams — stream order,
// held lines, edits, sequence/acknowledgement/SACK mapping, and rebuilding retransmissions
// identically.
//
// Each direction of a helper connection is an ordered byte stream. A segment that
// continues the stream is shown to the helper (after any bytes held back); one from ahead
// of a gap is dropped so the sender resends in order; a retransmission is rebuilt from the
// edit log, byte for byte as it was first sent. Unlike nf_conntrack_seqadj, which keeps one
// correction point per direction, the log keeps the last `HelperLimits.editLog` edits.

extension NATTranslator {
    @inline(__always)
    func stream(_ connection: UnsafeMutablePointer<HelperConnection>, _ index: Int) -> UnsafeMutablePointer<StreamState> {
        (UnsafeMutableRawPointer(connection) + MemoryLayout<HelperConnection>.offset(of: \HelperConnection.streams)!
            + index * MemoryLayout<StreamState>.stride).assumingMemoryBound(to: StreamState.self)
    }

    /// Runs after the address translation of a TCP segment of a helper connection.
    func applyStreamHelper(_ ip: IPv4Packet, sessionRow: Int32, outbound: Bool, now: NATTime) -> TranslationVerdict {
        let connectionRow = sessions[sessionRow].helper
        let connection = helperConnections.pointer(connectionRow)
        let sendIndex = outbound ? 0 : 1
        let send = stream(connection, sendIndex)
        let tcp = TCPHeader(unchecked: ip.transport)
        let payload = ip.transport + tcp.dataOffset
        let payloadLength = ip.transportLength - tcp.dataOffset
        let flags = tcp.flags
        let sequence = tcp.sequenceNumber

        if flags.contains(.syn) {
            // A SYN (re)starts the stream. One that moves it elsewhere (a late duplicate, or a new
            // connection on this session) leaves the edits, held bytes and acknowledgement of
            // the old numbers behind: kept, they would no longer be in stream order, and
            // rebuilding a retransmission from them would copy a negative length.
            if send.pointee.started, send.pointee.nextSequence != sequence &+ 1 {
                if send.pointee.editCount > 0 || send.pointee.baseDelta != 0 { recordHelperState(sessionRow, outbound: outbound) }
                send.pointee = .initial
            }
            send.pointee.nextSequence = sequence &+ 1
            send.pointee.started = true
        } else if !send.pointee.started {
            // A stream resumed from replicated state (edits, no position; NATReplica) goes on at
            // this segment, or after its last edit when this one is older (a retransmission, to
            // be rebuilt from the log rather than edited twice). A new stream has no edits.
            let count = Int(send.pointee.editCount)
            let lastEnd = count > 0 ? helperConnections.edits(connectionRow, sendIndex)[count - 1].end : sequence
            send.pointee.nextSequence = seqLT(sequence, lastEnd) ? lastEnd : sequence
            send.pointee.started = true
        }
        if payloadLength == 0 || flags.contains(.syn) {
            if flags.contains(.fin), sequence == send.pointee.nextSequence { send.pointee.nextSequence &+= 1 }
            let peer = stream(connection, 1 - sendIndex)
            if send.pointee.editCount == 0, send.pointee.baseDelta == 0, peer.pointee.editCount == 0, peer.pointee.baseDelta == 0 {
                return .acceptRewritten // nothing was ever edited: the numbers need no mapping
            }
            return emit(ip, connectionRow: connectionRow, sendIndex: sendIndex, outputStart: sequence,
                        bytes: UnsafeRawPointer(payload), count: payloadLength)
        }

        let end = sequence &+ UInt32(payloadLength)
        let ahead = Int32(bitPattern: sequence &- send.pointee.nextSequence)
        if ahead > 0 { return drop(.helperOutOfOrder) }
        if ahead < 0, Int32(bitPattern: end &- send.pointee.nextSequence) <= 0 {
            return retransmission(ip, connectionRow: connectionRow, sendIndex: sendIndex, sequence: sequence, end: end)
        }
        // New bytes (possibly after already-seen ones that a retransmission collapsed in front).
        // Seen bytes that were edited or are held cannot go out as they are: the segment then
        // starts at the first byte not yet sent (if the peer lacks the earlier ones, the sender
        // retransmits them, and that retransmission is rebuilt from the log). Dropping it
        // instead would drop every retransmission alike: the connection would stall.
        let seen = Int(send.pointee.nextSequence &- sequence)
        let resendSeen = seen > 0 && send.pointee.heldLength == 0
            && !editIntersects(connectionRow, sendIndex, sequence, send.pointee.nextSequence)
        return continueStream(ip, connection: connection, connectionRow: connectionRow, sendIndex: sendIndex,
                              sessionRow: sessionRow, seen: seen, resendSeen: resendSeen, flags: flags)
    }

    /// Shows the helper the held bytes and the new bytes, applies its edits and holds.
    private func continueStream(_ ip: IPv4Packet, connection: UnsafeMutablePointer<HelperConnection>, connectionRow: Int32,
                                sendIndex: Int, sessionRow: Int32, seen: Int, resendSeen: Bool, flags: TCPFlags) -> TranslationVerdict {
        let send = stream(connection, sendIndex)
        let tcp = TCPHeader(unchecked: ip.transport)
        let sequence = tcp.sequenceNumber
        let payload = ip.transport + tcp.dataOffset
        let payloadLength = ip.transportLength - tcp.dataOffset
        let held = Int(send.pointee.heldLength)
        let heldBytes = helperConnections.held(connectionRow, sendIndex)

        // The inspected bytes: held bytes, then the new ones.
        let fresh = payloadLength - seen
        helperScratch.input.copyMemory(from: heldBytes, byteCount: held)
        (helperScratch.input + held).copyMemory(from: payload + seen, byteCount: fresh)
        let dataCount = held + fresh
        let dataStart = sequence &+ UInt32(seen) &- UInt32(held)
        let outputStart = resendSeen ? sequence : dataStart
        send.pointee.nextSequence = sequence &+ UInt32(payloadLength) &+ (flags.contains(.fin) ? 1 : 0)

        // Ask the helper.
        let helperIndex = Int(connection.pointee.helperIndex)
        var context = helperContext(connectionRow: connectionRow, sessionRow: sessionRow, sendIndex: sendIndex,
                                    transport: .stream, dataCount: dataCount)
        let direction = context.direction
        // Edits the log can still take (acknowledged ones make room): `replace` refuses beyond
        // that at once, so a helper never counts a rewrite that would not happen.
        let edits = helperConnections.edits(connectionRow, sendIndex)
        var prunable = 0
        if send.pointee.acknowledgedSeen {
            while prunable < Int(send.pointee.editCount), seqLE(edits[prunable].end, send.pointee.acknowledged) { prunable += 1 }
        }
        stagedEditRoom = min(HelperLimits.editsPerInspect, HelperLimits.editLog - Int(send.pointee.editCount) + prunable)
        stagedEditCount = 0
        let stateBefore = recordsHelperStateChanges ? HelperStateWords(helperConnections.state(connectionRow)) : nil
        let verdict = configuration.helpers[helperIndex].helper.inspect(
            HelperData(bytes: UnsafeRawBufferPointer(start: helperScratch.input, count: dataCount), direction: direction), &context)
        var holdFrom = dataCount
        // Nothing is held from a segment that ends the stream: no more bytes will come.
        if case .holdFrom(let offset) = verdict, offset >= 0, offset < dataCount, !flags.contains(.fin) {
            if dataCount - offset <= helperConnections.heldCapacity {
                holdFrom = offset
                counters[.helperLinesHeld] &+= 1
            } else {
                countHelperEvent(helperIndex, .limit)
            }
        }

        // The output: already-seen bytes as they were (when they can be), then the inspected
        // bytes up to the held part, with the edits that lie there and fit in the log.
        var outputCount = 0
        let output = helperScratch.payload
        if resendSeen {
            output.copyMemory(from: payload, byteCount: seen)
            outputCount = seen
        }
        var cursor = 0, logged = 0
        for i in 0..<stagedEditCount {
            let edit = helperScratch.edits[i]
            guard edit.end <= holdFrom else { break }
            let start = dataStart &+ UInt32(edit.start)
            guard logEdit(connectionRow, sendIndex, start: start, end: dataStart &+ UInt32(edit.end),
                          replacement: helperScratch.replacement(i), length: edit.length)
            else {
                countHelperEvent(helperIndex, .limit)
                continue
            }
            logged += 1
            appendStagedEdit(i, from: helperScratch.input, cursor: &cursor, to: output, count: &outputCount)
        }
        (output + outputCount).copyMemory(from: helperScratch.input + cursor, byteCount: holdFrom - cursor)
        outputCount += holdFrom - cursor
        // What is held now.
        heldBytes.copyMemory(from: helperScratch.input + holdFrom, byteCount: dataCount - holdFrom)
        send.pointee.heldLength = UInt16(dataCount - holdFrom)
        send.pointee.heldRetransmissions = 0
        // The standby needs the edits (its numbers cannot be mapped without them) and the
        // helper's state (an FTP helper that saw no greeting abandons the stream).
        if let stateBefore, logged > 0 || stateBefore != HelperStateWords(helperConnections.state(connectionRow)) {
            recordHelperState(sessionRow, outbound: sendIndex == 0)
        }

        // The output starts at `outputStart` in the original stream; its sequence number is
        // mapped with the edits before it (the ones just logged all lie after it).
        return emit(ip, connectionRow: connectionRow, sendIndex: sendIndex, outputStart: outputStart,
                    bytes: UnsafeRawPointer(output), count: outputCount,
                    fin: flags.contains(.fin) && holdFrom == dataCount)
    }

    /// A segment entirely before the stream's next byte: rebuilt from the edit log exactly as
    /// it was sent the first time (bytes still held are not sent yet).
    private func retransmission(_ ip: IPv4Packet, connectionRow: Int32, sendIndex: Int, sequence: UInt32, end: UInt32) -> TranslationVerdict {
        let connection = helperConnections.pointer(connectionRow)
        let send = stream(connection, sendIndex)
        let tcp = TCPHeader(unchecked: ip.transport)
        let payload = ip.transport + tcp.dataOffset
        var emitEnd = end
        let heldStart = send.pointee.nextSequence &- UInt32(send.pointee.heldLength)
        if send.pointee.heldLength > 0, seqLT(heldStart, end) {
            send.pointee.heldRetransmissions &+= 1
            if send.pointee.heldRetransmissions > 3 {
                // The sender keeps waiting for the held bytes (the rest of the line is not
                // coming): let them go as they are rather than stall the connection.
                send.pointee.heldLength = 0
                counters[.helperHeldReleased] &+= 1
            } else {
                emitEnd = seqLT(heldStart, sequence) ? sequence : heldStart
            }
        }
        let edits = helperConnections.edits(connectionRow, sendIndex)
        var outputCount = 0
        var cursor = sequence
        let output = helperScratch.payload
        for i in 0..<Int(send.pointee.editCount) {
            let edit = edits[i]
            if seqLE(edit.end, sequence) || seqLE(emitEnd, edit.start) { continue }
            guard seqLE(sequence, edit.start), seqLE(edit.end, emitEnd) else { return drop(.helperRetransmissionMismatch) }
            let raw = Int(edit.start &- cursor)
            (output + outputCount).copyMemory(from: payload + Int(cursor &- sequence), byteCount: raw)
            outputCount += raw
            (output + outputCount).copyMemory(from: helperConnections.replacement(connectionRow, sendIndex, i), byteCount: Int(edit.length))
            outputCount += Int(edit.length)
            cursor = edit.end
        }
        let rest = Int(emitEnd &- cursor)
        if rest > 0 {
            (output + outputCount).copyMemory(from: payload + Int(cursor &- sequence), byteCount: rest)
            outputCount += rest
        }
        return emit(ip, connectionRow: connectionRow, sendIndex: sendIndex, outputStart: sequence,
                    bytes: UnsafeRawPointer(output), count: outputCount,
                    fin: tcp.flags.contains(.fin) && emitEnd == end)
    }

    /// True if a logged edit touches original bytes [start, end).
    private func editIntersects(_ connectionRow: Int32, _ sendIndex: Int, _ start: UInt32, _ end: UInt32) -> Bool {
        let send = stream(helperConnections.pointer(connectionRow), sendIndex)
        let edits = helperConnections.edits(connectionRow, sendIndex)
        for i in 0..<Int(send.pointee.editCount) where seqLT(edits[i].start, end) && seqLT(start, edits[i].end) {
            return true
        }
        return false
    }

    /// Appends an edit to a direction's log, first dropping edits the peer has acknowledged
    /// when the log is full. False when there is no room (or the replacement is too long).
    private func logEdit(_ connectionRow: Int32, _ sendIndex: Int, start: UInt32, end: UInt32,
                         replacement: UnsafeRawPointer, length: Int) -> Bool {
        let send = stream(helperConnections.pointer(connectionRow), sendIndex)
        let edits = helperConnections.edits(connectionRow, sendIndex)
        if Int(send.pointee.editCount) == HelperLimits.editLog {
            guard send.pointee.acknowledgedSeen, seqLE(edits[0].end, send.pointee.acknowledged) else { return false }
            send.pointee.baseDelta = edits[0].cumulativeDelta
            for i in 1..<HelperLimits.editLog {
                edits[i - 1] = edits[i]
                helperConnections.replacement(connectionRow, sendIndex, i - 1)
                    .copyMemory(from: helperConnections.replacement(connectionRow, sendIndex, i), byteCount: HelperLimits.maxReplacement)
            }
            send.pointee.editCount -= 1
        }
        let count = Int(send.pointee.editCount)
        let before = count > 0 ? edits[count - 1].cumulativeDelta : send.pointee.baseDelta
        // Wrapping: the total shift is a sequence-space offset (mod 2^32), and a peer that keeps
        // a connection open can make it grow past Int32 one shrinking edit at a time.
        edits[count] = StreamEdit(start: start, end: end, cumulativeDelta: before &+ Int32(length) &- Int32(bitPattern: end &- start),
                                  length: UInt8(length))
        helperConnections.replacement(connectionRow, sendIndex, count).copyMemory(from: replacement, byteCount: length)
        send.pointee.editCount += 1
        return true
    }

    /// Original → sent sequence number of a direction.
    @inline(__always)
    func mapSequence(_ connectionRow: Int32, _ sendIndex: Int, _ original: UInt32) -> UInt32 {
        let send = stream(helperConnections.pointer(connectionRow), sendIndex)
        let edits = helperConnections.edits(connectionRow, sendIndex)
        var delta = send.pointee.baseDelta
        for i in 0..<Int(send.pointee.editCount) {
            guard seqLE(edits[i].end, original) else { break }
            delta = edits[i].cumulativeDelta
        }
        return original &+ UInt32(bitPattern: delta)
    }

    /// Sent → original sequence number of a direction (for the peer's ACKs and SACK edges).
    /// An edge inside a replaced range maps to the range's start (the peer lacks some of it).
    @inline(__always)
    func unmapSequence(_ connectionRow: Int32, _ sendIndex: Int, _ sent: UInt32) -> UInt32 {
        let send = stream(helperConnections.pointer(connectionRow), sendIndex)
        let edits = helperConnections.edits(connectionRow, sendIndex)
        var delta = send.pointee.baseDelta
        for i in 0..<Int(send.pointee.editCount) {
            let newStart = edits[i].start &+ UInt32(bitPattern: delta)
            let newEnd = edits[i].end &+ UInt32(bitPattern: edits[i].cumulativeDelta)
            if seqLE(newEnd, sent) {
                delta = edits[i].cumulativeDelta
            } else {
                if seqLT(newStart, sent) { return edits[i].start }
                break
            }
        }
        return sent &- UInt32(bitPattern: delta)
    }

    /// Writes the segment with `count` payload bytes from `bytes`, starting at original
    /// sequence `outputStart`: maps SEQ, ACK and SACK blocks, fixes lengths and checksums.
    private func emit(_ ip: IPv4Packet, connectionRow: Int32, sendIndex: Int, outputStart: UInt32,
                      bytes: UnsafeRawPointer, count: Int, fin: Bool = true) -> TranslationVerdict {
        let header = ip.header
        let tcp = TCPHeader(unchecked: ip.transport)
        let headerLength = header.headerLength + tcp.dataOffset
        let total = headerLength + count
        guard total <= 65535 else { return drop(.helperRetransmissionMismatch) }
        let out = helperScratch.packet
        out.copyMemory(from: header.bytes, byteCount: headerLength)
        (out + headerLength).copyMemory(from: bytes, byteCount: count)
        let outIP = IPv4Header(unchecked: out)
        let outTCP = out + header.headerLength
        out.storeBE16(UInt16(total), at: 2)
        outIP.updateHeaderChecksum()
        outTCP.storeBE32(mapSequence(connectionRow, sendIndex, outputStart), at: 4)
        if !fin { outTCP.storeBE8(outTCP.loadBE8(at: 13) & ~TCPFlags.fin.rawValue, at: 13) }
        let ackIndex = 1 - sendIndex
        if TCPFlags(rawValue: outTCP.loadBE8(at: 13)).contains(.ack) {
            let ack = unmapSequence(connectionRow, ackIndex, outTCP.loadBE32(at: 8))
            outTCP.storeBE32(ack, at: 8)
            let peer = stream(helperConnections.pointer(connectionRow), ackIndex)
            if !peer.pointee.acknowledgedSeen || seqLT(peer.pointee.acknowledged, ack) {
                peer.pointee.acknowledged = ack
                peer.pointee.acknowledgedSeen = true
            }
            mapSACKBlocks(outTCP, dataOffset: tcp.dataOffset, connectionRow: connectionRow, ackIndex: ackIndex)
        }
        let l4Length = total - header.headerLength
        outTCP.storeBE16(0, at: TCPHeader.checksumOffset)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: outIP.source.value, destination: outIP.destination.value, protocolNumber: IPProtocolNumber.tcp, length: l4Length)
        outTCP.storeBE16(~InternetChecksum.add(pseudo, InternetChecksum.sum(UnsafeRawPointer(outTCP), count: l4Length)),
                         at: TCPHeader.checksumOffset)
        return .acceptReplaced(UnsafeMutableRawBufferPointer(start: out, count: total))
    }

    /// SACK option edges (RFC 2018) acknowledge the peer's stream: map them like the ACK.
    private func mapSACKBlocks(_ tcp: UnsafeMutableRawPointer, dataOffset: Int, connectionRow: Int32, ackIndex: Int) {
        var offset = TCPHeader.minimumLength
        while offset < dataOffset {
            let kind = tcp.loadBE8(at: offset)
            if kind == 0 { return }
            if kind == 1 { offset += 1; continue }
            guard offset + 1 < dataOffset else { return }
            let length = Int(tcp.loadBE8(at: offset + 1))
            guard length >= 2, offset + length <= dataOffset else { return }
            if kind == 5 {
                var edge = offset + 2
                while edge + 4 <= offset + length {
                    tcp.storeBE32(unmapSequence(connectionRow, ackIndex, tcp.loadBE32(at: edge)), at: edge)
                    edge += 4
                }
            }
            offset += length
        }
    }
}

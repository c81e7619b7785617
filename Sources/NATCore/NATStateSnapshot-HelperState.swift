// A helper connection's state as the HA increments carry it (NATTranslator-HelperState.swift,
// NATReplica.applyHelperState): what a standby needs to go on with the connection after a
// takeover, smaller than the state file's fixed-size record. Held bytes are not carried: a
// replicated stream resumes at the next segment it sees (the sender resends bytes that were
// held, never sent on), so only the edit log and the helper's own bytes matter. Edits the peer
// has acknowledged are folded into the base delta (as the packet path does when its log is
// full). Big-endian:
//
//   0 helper name length n (1-16)   1 name (n bytes, printable ASCII)   1+n client is internal (0/1)
//   then for the internal endpoint's stream and the remote's: next sequence 4, acknowledged 4,
//   base delta 4, flags 1 (1: started, 2: acknowledged seen, others 0), edit count 1 (0-8),
//   edits (start 4, end 4, cumulative delta 4, replacement length 1 (0-64), replacement)
//   then the helper's 64 state bytes. Nothing after them.

extension NATStateSnapshot.HelperRecord {
    /// The record as the increments carry it (see the top of the file).
    func syncEncoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + 2 * 14)
        let name = Array(helperName.utf8)
        out.append(UInt8(name.count))
        out += name
        out.append(clientIsInternal ? 1 : 0)
        func put32(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
        for stream in streams {
            // Acknowledged edits only shift numbers now: folded into the base delta.
            let folded = stream.acknowledgedSeen ? stream.edits.prefix { seqLE($0.end, stream.acknowledged) }.count : 0
            let base = folded > 0 ? stream.edits[folded - 1].cumulativeDelta : stream.baseDelta
            put32(stream.nextSequence); put32(stream.acknowledged); put32(UInt32(bitPattern: base))
            out.append((stream.started ? 1 : 0) | (stream.acknowledgedSeen ? 2 : 0))
            out.append(UInt8(stream.edits.count - folded))
            for edit in stream.edits.dropFirst(folded) {
                put32(edit.start); put32(edit.end); put32(UInt32(bitPattern: edit.cumulativeDelta))
                out.append(UInt8(edit.replacement.count))
                out += edit.replacement
            }
        }
        out += state
        return out
    }

    /// Reads `bytes` (see the top of the file); nil when they are not exactly one valid record
    /// (a name, flags or counts out of range, a stream the packet path could not run on).
    init?(syncEncoded bytes: [UInt8]) {
        var i = 0
        func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, bytes.count - i >= n else { return nil }
            defer { i += n }
            return bytes[i..<(i + n)]
        }
        func get32() -> UInt32? {
            guard let b = take(4) else { return nil }
            return b.reduce(0) { $0 << 8 | UInt32($1) }
        }
        guard let n = take(1)?.first, n >= 1, n <= StateFormat.nameBytes, let name = take(Int(n)),
              name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }), let client = take(1)?.first, client <= 1 else { return nil }
        var streams: [NATStateSnapshot.StreamRecord] = []
        for _ in 0..<2 {
            guard let next = get32(), let acknowledged = get32(), let base = get32(), let flags = take(1)?.first, flags & ~3 == 0,
                  let count = take(1)?.first, count <= HelperLimits.editLog else { return nil }
            var stream = NATStateSnapshot.StreamRecord(nextSequence: next, acknowledged: acknowledged, baseDelta: Int32(bitPattern: base),
                                                       started: flags & 1 != 0, acknowledgedSeen: flags & 2 != 0)
            for _ in 0..<count {
                guard let start = get32(), let end = get32(), let delta = get32(), let length = take(1)?.first,
                      length <= HelperLimits.maxReplacement, let replacement = take(Int(length)) else { return nil }
                stream.edits.append(.init(start: start, end: end, cumulativeDelta: Int32(bitPattern: delta), replacement: Array(replacement)))
            }
            guard stream.problem == nil else { return nil }
            streams.append(stream)
        }
        guard let state = take(HelperConnectionTable.stateBytes), i == bytes.count else { return nil }
        self.init(helperName: String(decoding: name, as: UTF8.self), clientIsInternal: client == 1, streams: streams, state: Array(state))
    }

    /// As a replicated stream resumes after a takeover: at the next segment seen, nothing held
    /// (the state is older than the stream's position; NATTranslator-HelperStream.swift).
    var resumed: Self {
        var record = self
        for i in record.streams.indices {
            record.streams[i].started = false
            record.streams[i].held = []
            record.streams[i].heldRetransmissions = 0
        }
        return record
    }
}

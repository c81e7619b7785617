// The translation state as a file, so a restarted daemon goes on translating the sessions
// that were live (issue #8): the kernel keeps conntrack across a daemon upgrade, and an idle
// TCP session through masqd must survive one too.
//
// Version 2, all integers big-endian. Version 1 has the same layout; in it only TCP sessions
// may have a helper connection record, in version 2 UDP ones too (datagram helpers keep their
// 64 state bytes there; their streams are unused and zero). A file that needs no version 2
// record is written as version 1, so the masqd before datagram helpers still reads it.
// Version 3 gives reserved fields a meaning and adds records: header bytes 28-31 hold the
// source pools' fingerprint and a mapping's last two bytes its external address index (0: the
// WAN address, i: the i-th pool address; issue #15), both only when a mapping is on a pool
// address; header bytes 52-55 count the address-only records that follow the helper records
// (issue #14). It is written only when one of them is needed; otherwise files stay version 1
// or 2, so an older masqd still reads them.
//
//   header (56 bytes)
//     0  magic "MASQDST\n"          8  version (2)                10  held bytes per helper direction
//     12 edit log length (8)        13 largest replacement (64)   14 helper state bytes (64)
//     16 wall-clock time of the save, nanoseconds since 1970 (the daemon's; the core reads no clock)
//     24 external address (0: none, then no records)              28 pools' fingerprint (version 3), else 0
//     32 longest timeout at the save, nanoseconds                 40 mapping records
//     44 session records            48 helper connection records
//     52 address-only records (version 3; before it reserved, 0)
//   mapping records (12 bytes each)
//     internal address 4, internal port 2, external port 2, protocol 1, flags 1 (1: port
//     forward's static mapping), reserved 2
//   session records (24 bytes each)
//     mapping record index 4, remote address 4, remaining lifetime ns 8, remote port 2,
//     TCP state 1, TCP flags seen 1, helper connection record index 4 (0xffffffff: none)
//   helper connection records (20 + 2 × (20 + 8 × 13 + 8 × 64 + held) + 64 bytes each)
//     helper name 16 (ASCII, zero-padded), client is internal 1, reserved 3, then for the
//     internal endpoint's stream and the remote's: next sequence 4, acknowledged 4, base
//     delta 4, held length 2, started 1, acknowledged seen 1, held retransmissions 1, edit
//     count 1, reserved 2, edits (start 4, end 4, cumulative delta 4, length 1) × 8,
//     replacements 64 × 8, held bytes; then the helper's 64 state bytes
//   address-only records (version 3 and later, 20 bytes each; NATStateSnapshot-AddressOnly.swift)
//     internal address 4, remote address 4, remaining lifetime ns 8, protocol 1, reserved 3
//   version 4 only (NATStateSnapshot-Redirect.swift): redirect record count 4, then the
//   redirect records (28 bytes each): client address 4, original address 4, local address 4,
//   remaining lifetime ns 8, client port 2, original port 2, local port 2, TCP state 1,
//   TCP flags seen 1. (Version 3's header has no reserved field left, so version 4 is 3 plus
//   this trailing section, written only with redirected connections.)
//   FNV-1a 64 of every byte before it (8 bytes)
//
// Unused and reserved bytes are zero. What is saved: every live session with its mapping,
// TCP state, remaining lifetime and helper connection state (held bytes, edit log, the
// helper's own bytes). What is not: pending expectations (an FTP data connection announced
// before the restart must be announced again), counters, fragments being reassembled.

public struct NATStateSnapshot: Sendable, Equatable {
    /// Wall-clock time of the save (nanoseconds since 1970), as the daemon read it.
    public var savedAt: UInt64
    /// The external address the state was made with; nil when there was none (then nothing is saved).
    public var externalAddress: IPv4Address?
    /// The longest idle timeout at the save: no session can outlive a restart longer than this.
    public var longestTimeout: NATDuration
    var heldCapacity: Int
    /// Version 3: SourceAddressPools.fingerprint of the pools the external indices refer to (0: none).
    var poolsFingerprint: UInt32 = 0
    var mappings: [MappingRecord] = []
    var sessions: [SessionRecord] = []
    var helperConnections: [HelperRecord] = []
    var addressOnlyFlows: [AddressOnlyRecord] = []
    /// Redirected connections (version 4; none in older files).
    var redirects: [RedirectRecord] = []

    public var sessionCount: Int { sessions.count }
    public var mappingCount: Int { mappings.count }
    public var helperConnectionCount: Int { helperConnections.count }

    struct MappingRecord: Sendable, Equatable {
        var protocolNumber: UInt8
        var internalEndpoint: IPv4Endpoint
        var externalPort: UInt16
        var isStatic: Bool
        /// Version 3: the external address index (0: the WAN address; SourceAddressPools.swift).
        var externalIndex: UInt8 = 0
    }

    struct SessionRecord: Sendable, Equatable {
        var mapping: Int
        var remoteEndpoint: IPv4Endpoint
        var lifetime: LifetimeRecord
        var helper: Int?
    }

    /// What a saved flow's timer goes on from (sessions and redirected connections): its TCP
    /// state (`none` but for TCP), the TCP flags seen, and what was left of its lifetime.
    struct LifetimeRecord: Sendable, Equatable {
        var tcpState: TCPSessionState
        var tcpFlagsSeen: UInt8
        var remaining: NATDuration

        /// What is left after `downtime`, no longer than the state's timeout now (a reload may
        /// have shortened it since the save).
        func remaining(after downtime: NATDuration, protocolNumber: UInt8, timeouts: NATTimeouts) -> NATDuration {
            min(NATDuration(nanoseconds: remaining.nanoseconds - downtime.nanoseconds),
                timeouts.timeout(protocolNumber: protocolNumber, tcpState: tcpState))
        }
    }

    struct EditRecord: Sendable, Equatable {
        var start: UInt32
        var end: UInt32
        var cumulativeDelta: Int32
        var replacement: [UInt8]
    }

    struct StreamRecord: Sendable, Equatable {
        var nextSequence: UInt32 = 0
        var acknowledged: UInt32 = 0
        var baseDelta: Int32 = 0
        var started = false
        var acknowledgedSeen = false
        var heldRetransmissions: UInt8 = 0
        var edits: [EditRecord] = []
        var held: [UInt8] = []

        /// True when the stream cannot go on without this record: bytes were edited or are held.
        var carriesEdits: Bool { !edits.isEmpty || baseDelta != 0 || !held.isEmpty }

        /// Why the packet path could not run on this stream, or nil. It relies on edits in
        /// stream order, ending before the held bytes (which sit just before the next byte:
        /// the packet path only logs edits of bytes it sends, and rebuilds retransmissions up
        /// to the held ones from the log), each delta the sum of those before (and far from
        /// overflowing). The exporter leaves out a connection this refuses, so a saved file
        /// always reads back.
        var problem: String? {
            let bound: Int32 = 1 << 30
            guard edits.count <= HelperLimits.editLog, abs(Int(baseDelta)) < Int(bound) else { return "edit log or base delta out of range" }
            guard held.count <= Int(UInt16.max) else { return "\(held.count) held bytes" }
            let heldStart = nextSequence &- UInt32(held.count)
            if let last = edits.last, !seqLE(last.end, heldStart) {
                return "edit \(edits.count - 1) ends among the held bytes or after the next byte"
            }
            var delta = baseDelta
            var previousEnd: UInt32? = nil
            for (i, edit) in edits.enumerated() {
                let removed = edit.end &- edit.start
                guard edit.replacement.count <= HelperLimits.maxReplacement, seqLE(edit.start, edit.end), seqLE(edit.end, nextSequence),
                      previousEnd.map({ seqLE($0, edit.start) }) ?? true, removed < UInt32(bound),
                      Int(edit.cumulativeDelta) == Int(delta) + edit.replacement.count - Int(removed),
                      abs(Int(edit.cumulativeDelta)) < Int(bound)
                else { return "edit \(i) out of order or inconsistent" }
                delta = edit.cumulativeDelta
                previousEnd = edit.end
            }
            if !held.isEmpty, !started { return "held bytes on a stream not started" }
            return nil
        }
    }

    struct HelperRecord: Sendable, Equatable {
        var helperName: String
        var clientIsInternal: Bool
        /// [0]: bytes sent by the internal endpoint; [1]: by the remote endpoint.
        var streams: [StreamRecord]
        var state: [UInt8]
    }
}

/// Layout constants of the file (see the top of NATStateSnapshot.swift).
enum StateFormat {
    static let magic: [UInt8] = Array("MASQDST\n".utf8)
    /// The version written; every version from `oldestReadable` up to it is read.
    static let version: UInt16 = 4
    static let oldestReadable: UInt16 = 1
    static let headerBytes = 56
    static let mappingBytes = 12
    static let sessionBytes = 24
    static let addressOnlyBytes = 20
    static let redirectBytes = 28
    static let checksumBytes = 8
    static let nameBytes = 16
    static let editBytes = 13
    static let streamFixedBytes = 20
    static let noHelper: UInt32 = 0xffff_ffff
    static let staticFlag: UInt8 = 1
    /// Largest held-bytes area a header may announce (HelperLimits.heldBytes rounded up).
    static let maxHeldCapacity = 65528

    static func helperBytes(heldCapacity: Int) -> Int {
        nameBytes + 4 + 2 * streamBytes(heldCapacity: heldCapacity) + HelperConnectionTable.stateBytes
    }

    static func streamBytes(heldCapacity: Int) -> Int {
        streamFixedBytes + HelperLimits.editLog * (editBytes + HelperLimits.maxReplacement) + heldCapacity
    }

    /// FNV-1a, 64 bits: any change of one byte changes it (each step is a bijection of the state).
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }
}

/// Why a state file is refused; each is one line for the daemon's log. Nothing of a refused
/// file reaches the translator.
public enum NATStateError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(length: Int, expected: Int)
    case trailingBytes(length: Int, expected: Int)
    case notAStateFile
    case unsupportedVersion(UInt16)
    case checksumMismatch
    case invalidHeader(String)
    case invalidRecord(kind: String, index: Int, reason: String)
    case externalAddressChanged(saved: IPv4Address, now: IPv4Address?)
    case stale(age: NATDuration, longestTimeout: NATDuration)
    case savedInTheFuture(by: NATDuration)
    case translatorNotEmpty

    public var description: String {
        switch self {
        case .truncated(let length, let expected): "truncated: \(length) bytes, expected \(expected)"
        case .trailingBytes(let length, let expected): "\(length - expected) bytes after the end (\(length) bytes, expected \(expected))"
        case .notAStateFile: "not a masqd state file (no MASQDST magic)"
        case .unsupportedVersion(let v): "format version \(v); this masqd reads versions \(StateFormat.oldestReadable)-\(StateFormat.version)"
        case .checksumMismatch: "checksum mismatch (the file is corrupt)"
        case .invalidHeader(let reason): "bad header: \(reason)"
        case .invalidRecord(let kind, let index, let reason): "bad \(kind) record \(index): \(reason)"
        case .externalAddressChanged(let saved, let now):
            "saved for WAN address \(saved), the WAN now has \(now.map { "\($0)" } ?? "no address")"
        case .stale(let age, let longest):
            "stale: saved \(age.wholeSeconds)s ago, longer than the longest timeout (\(longest.wholeSeconds)s)"
        case .savedInTheFuture(let by): "saved \(by.wholeSeconds)s in the future (did the clock go back?)"
        case .translatorNotEmpty: "the translator already holds sessions; state is restored only into a fresh one"
        }
    }
}

// MARK: - Encoding

extension NATStateSnapshot {
    /// Tolerated backward step of the wall clock between save and restore (NTP adjustments).
    public static let clockTolerance = NATDuration.seconds(60)

    /// The file's bytes.
    public func encoded() -> [UInt8] {
        var out = ByteWriter()
        out.bytes.reserveCapacity(StateFormat.headerBytes + mappings.count * StateFormat.mappingBytes
            + sessions.count * StateFormat.sessionBytes + helperConnections.count * StateFormat.helperBytes(heldCapacity: heldCapacity)
            + (redirects.isEmpty ? 0 : 4 + redirects.count * StateFormat.redirectBytes) + StateFormat.checksumBytes)
        out.append(StateFormat.magic)
        // Version 1 when nothing needs 2 (no UDP flow with a helper record): the masqd before
        // datagram helpers can then still read the file, so a rollback keeps its flows.
        // Likewise version 2 when no address-only flow needs 3.
        let needsVersion2 = sessions.contains { $0.helper != nil && mappings[$0.mapping].protocolNumber != IPProtocolNumber.tcp }
        // Version 3 with something of its own: a mapping on a pool address (then the pools'
        // fingerprint and each mapping's address index), or address-only records; version 4 is
        // 3 plus redirected connections. Otherwise 2 or 1, so an older masqd still reads the file.
        let needsPools = poolsFingerprint != 0 && mappings.contains { $0.externalIndex != 0 }
        let needsVersion3 = needsPools || !addressOnlyFlows.isEmpty
        out.u16(!redirects.isEmpty ? 4 : needsVersion3 ? 3 : needsVersion2 ? 2 : StateFormat.oldestReadable)
        out.u16(UInt16(heldCapacity))
        out.u8(UInt8(HelperLimits.editLog))
        out.u8(UInt8(HelperLimits.maxReplacement))
        out.u16(UInt16(HelperConnectionTable.stateBytes))
        out.u64(savedAt)
        out.u32(externalAddress?.value ?? 0)
        out.u32(needsPools ? poolsFingerprint : 0)
        out.u64(longestTimeout.nanoseconds)
        out.u32(UInt32(mappings.count))
        out.u32(UInt32(sessions.count))
        out.u32(UInt32(helperConnections.count))
        out.u32(UInt32(addressOnlyFlows.count))
        for m in mappings {
            out.u32(m.internalEndpoint.address.value)
            out.u16(m.internalEndpoint.port)
            out.u16(m.externalPort)
            out.u8(m.protocolNumber)
            out.u8(m.isStatic ? StateFormat.staticFlag : 0)
            out.u16(needsPools ? UInt16(m.externalIndex) : 0)
        }
        for s in sessions {
            out.u32(UInt32(s.mapping))
            out.u32(s.remoteEndpoint.address.value)
            out.u64(s.lifetime.remaining.nanoseconds)
            out.u16(s.remoteEndpoint.port)
            out.u8(s.lifetime.tcpState.rawValue)
            out.u8(s.lifetime.tcpFlagsSeen)
            out.u32(s.helper.map { UInt32($0) } ?? StateFormat.noHelper)
        }
        for h in helperConnections {
            out.padded(Array(h.helperName.utf8), to: StateFormat.nameBytes)
            out.u8(h.clientIsInternal ? 1 : 0)
            out.zeros(3)
            for stream in h.streams {
                out.u32(stream.nextSequence)
                out.u32(stream.acknowledged)
                out.u32(UInt32(bitPattern: stream.baseDelta))
                out.u16(UInt16(stream.held.count))
                out.u8(stream.started ? 1 : 0)
                out.u8(stream.acknowledgedSeen ? 1 : 0)
                out.u8(stream.heldRetransmissions)
                out.u8(UInt8(stream.edits.count))
                out.u16(0)
                for i in 0..<HelperLimits.editLog {
                    guard i < stream.edits.count else { out.zeros(StateFormat.editBytes); continue }
                    let edit = stream.edits[i]
                    out.u32(edit.start)
                    out.u32(edit.end)
                    out.u32(UInt32(bitPattern: edit.cumulativeDelta))
                    out.u8(UInt8(edit.replacement.count))
                }
                for i in 0..<HelperLimits.editLog {
                    out.padded(i < stream.edits.count ? stream.edits[i].replacement : [], to: HelperLimits.maxReplacement)
                }
                out.padded(stream.held, to: heldCapacity)
            }
            out.padded(h.state, to: HelperConnectionTable.stateBytes)
        }
        for flow in addressOnlyFlows { flow.encode(&out) }
        encodeRedirects(&out)
        out.u64(StateFormat.checksum(out.bytes[...]))
        return out.bytes
    }

    /// How long the daemon was down: from the save to `wallClockNow` (nanoseconds since 1970).
    /// Refuses a state older than its longest timeout (nothing in it can be alive) and one
    /// saved more than `clockTolerance` in the future; a smaller backward step counts as 0.
    public func downtime(wallClockNow: UInt64) throws(NATStateError) -> NATDuration {
        if wallClockNow < savedAt {
            let ahead = NATDuration(nanoseconds: savedAt - wallClockNow)
            if ahead > Self.clockTolerance { throw .savedInTheFuture(by: ahead) }
            return NATDuration(nanoseconds: 0)
        }
        let age = NATDuration(nanoseconds: wallClockNow - savedAt)
        if age >= longestTimeout { throw .stale(age: age, longestTimeout: longestTimeout) }
        return age
    }
}

/// Appends big-endian integers to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
    mutating func append(_ b: [UInt8]) { bytes += b }
    mutating func zeros(_ n: Int) { bytes += repeatElement(0, count: n) }
    /// `b` then zeros up to `width` bytes (`b` is never longer: the encoder's callers ensure it).
    mutating func padded(_ b: [UInt8], to width: Int) {
        bytes += b.prefix(width)
        zeros(width - min(b.count, width))
    }
}

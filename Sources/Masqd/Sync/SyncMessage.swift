// One message of the sync channel between two routers (UDP, one message per datagram).
// Big-endian:
//
//   0  magic "MQSY"   4  version (3)   5  kind   6  payload length
//   8  sender epoch: the sender's start time (wall clock, ns), so a restarted peer's sequence
//      numbers are told from a replay of its old ones (an older epoch is stale)
//   16 sequence number (from 1, per epoch, every message): replays are refused by it
//   24 payload   then HMAC-SHA256 (32 bytes) of everything before it, under the shared key
//
// Payloads: hello (4: role, wants a full resync, 2 reserved), chunk of a full resync (12 +
// data: resync id, index, count; the resync's data is the number of the last increment
// batch it includes, 8 bytes, then the encoded state), ack (16: the sender epoch and resync
// acknowledged, and how many of its chunks from the first arrived without a gap), nack (20:
// the epoch and resync, first and last missing chunk), increments (16 + 22 × n, n 1-54: the
// batch number, the sender's wall clock, the records; SyncIncrement.swift), increment ack
// (24: the sender epoch, the last batch applied, the last batch of a gap after it or 0),
// helper state (16 + 17-1196: a batch of its own, number and wall clock as increments', then
// one SyncHelperState record; SyncHelperState.swift).
// What must arrive (chunks, increment batches) is made reliable by number, as FTFW does by
// sequence: acks, nacks, resends. Version 2 added the increments, the hello's flag and the
// resync's base; version 3 the helper state: an older peer's messages are refused as
// malformed (both routers run the same version to sync). No imports: the fuzz
// target compiles this file with SHA256.swift and HMACSHA256.swift.

enum SyncMessageKind: UInt8, Sendable {
    case hello = 1, chunk = 2, ack = 3, nack = 4, increments = 5, incrementAck = 6, helperState = 7
}

struct SyncMessage: Equatable, Sendable {
    enum Body: Equatable, Sendable {
        /// `wantsResync`: a standby whose copy is missing or cannot be brought up to date.
        case hello(active: Bool, wantsResync: Bool)
        case chunk(resync: UInt32, index: UInt32, count: UInt32, data: [UInt8])
        case ack(epoch: UInt64, resync: UInt32, received: UInt32)
        case nack(epoch: UInt64, resync: UInt32, from: UInt32, to: UInt32)
        /// A batch of records, or (kind 7) of one helper state.
        case increments(SyncIncrementBatch)
        /// Batches up to `through` applied; `missingTo` > 0: through+1...missingTo did not arrive.
        case incrementAck(epoch: UInt64, through: UInt64, missingTo: UInt64)
    }

    var epoch: UInt64
    var sequence: UInt64
    var body: Body

    static let headerSize = 24
    static let macSize = SHA256.digestSize
    /// Resync data per chunk: a message stays within one 1500-byte packet with IP and UDP headers.
    static let maxChunkData = 1200
    static let maxSize = headerSize + 12 + maxChunkData + macSize
    /// No resync has more chunks than this (about 5 GB); the receiver's own cap is lower.
    static let maxChunkCount: UInt32 = 1 << 22
    static let magic: [UInt8] = Array("MQSY".utf8)
    static let version: UInt8 = 3
    /// Increment records per message: a message stays within the chunk's size.
    static let maxIncrements = (maxChunkData + 12 - 16) / SyncIncrement.size

    var kind: SyncMessageKind {
        switch body {
        case .hello: .hello
        case .chunk: .chunk
        case .ack: .ack
        case .nack: .nack
        case .increments(let batch): batch.helperStates.isEmpty ? .increments : .helperState
        case .incrementAck: .incrementAck
        }
    }

    /// The datagram: header, payload, MAC.
    func encoded(with mac: HMACSHA256) -> [UInt8] {
        var payload: [UInt8] = []
        switch body {
        case .hello(let active, let wantsResync): payload = [active ? 1 : 0, wantsResync ? 1 : 0, 0, 0]
        case .chunk(let resync, let index, let count, let data):
            Self.put32(resync, &payload); Self.put32(index, &payload); Self.put32(count, &payload)
            payload += data
        case .ack(let epoch, let resync, let received):
            Self.put64(epoch, &payload); Self.put32(resync, &payload); Self.put32(received, &payload)
        case .nack(let epoch, let resync, let from, let to):
            Self.put64(epoch, &payload); Self.put32(resync, &payload); Self.put32(from, &payload); Self.put32(to, &payload)
        case .increments(let batch):
            Self.put64(batch.number, &payload); Self.put64(batch.wallClock, &payload)
            for record in batch.records { record.encode(into: &payload) }
            for state in batch.helperStates { state.encode(into: &payload) }
        case .incrementAck(let epoch, let through, let missingTo):
            Self.put64(epoch, &payload); Self.put64(through, &payload); Self.put64(missingTo, &payload)
        }
        var bytes = Self.magic + [Self.version, kind.rawValue, UInt8(payload.count >> 8), UInt8(truncatingIfNeeded: payload.count)]
        bytes.reserveCapacity(Self.headerSize + payload.count + Self.macSize)
        Self.put64(epoch, &bytes); Self.put64(sequence, &bytes)
        bytes += payload
        bytes += mac.authenticate(bytes)
        return bytes
    }

    /// Checks lengths, then the MAC, then the fields. Never traps on any input.
    static func decode(_ bytes: [UInt8], mac: HMACSHA256) -> Result<SyncMessage, SyncDropReason> {
        guard bytes.count >= headerSize + macSize, bytes.count <= maxSize else { return .failure(.wrongLength) }
        guard Array(bytes[0..<4]) == magic, bytes[4] == version else { return .failure(.malformed) }
        let length = Int(bytes[6]) << 8 | Int(bytes[7])
        guard headerSize + length + macSize == bytes.count else { return .failure(.wrongLength) }
        guard let kind = SyncMessageKind(rawValue: bytes[5]) else { return .failure(.malformed) }
        let signedEnd = headerSize + length
        guard mac.isValid(bytes[signedEnd...], for: bytes[0..<signedEnd]) else { return .failure(.badHMAC) }
        let p = headerSize
        let body: Body
        switch kind {
        case .hello:
            guard length == 4 else { return .failure(.wrongLength) }
            guard bytes[p] <= 1, bytes[p + 1] <= 1, bytes[p + 2] == 0, bytes[p + 3] == 0 else { return .failure(.malformed) }
            body = .hello(active: bytes[p] == 1, wantsResync: bytes[p + 1] == 1)
        case .chunk:
            guard length > 12 else { return .failure(.wrongLength) }
            let count = get32(bytes, p + 8), index = get32(bytes, p + 4)
            guard count >= 1, count <= maxChunkCount, index < count else { return .failure(.malformed) }
            body = .chunk(resync: get32(bytes, p), index: index, count: count, data: Array(bytes[(p + 12)..<signedEnd]))
        case .ack:
            guard length == 16 else { return .failure(.wrongLength) }
            body = .ack(epoch: get64(bytes, p), resync: get32(bytes, p + 8), received: get32(bytes, p + 12))
        case .nack:
            guard length == 20 else { return .failure(.wrongLength) }
            let from = get32(bytes, p + 12), to = get32(bytes, p + 16)
            guard from <= to else { return .failure(.malformed) }
            body = .nack(epoch: get64(bytes, p), resync: get32(bytes, p + 8), from: from, to: to)
        case .increments:
            let count = (length - 16) / SyncIncrement.size
            guard length > 16, (length - 16) % SyncIncrement.size == 0, count <= maxIncrements else { return .failure(.wrongLength) }
            var records: [SyncIncrement] = []
            records.reserveCapacity(count)
            for i in 0..<count {
                guard let record = SyncIncrement.decode(bytes, at: p + 16 + i * SyncIncrement.size) else { return .failure(.malformed) }
                records.append(record)
            }
            let number = get64(bytes, p)
            guard number >= 1 else { return .failure(.malformed) }
            body = .increments(SyncIncrementBatch(number: number, wallClock: get64(bytes, p + 8), records: records))
        case .helperState:
            guard length > 16, let state = SyncHelperState.decode(Array(bytes[(p + 16)..<signedEnd]), at: 0) else { return .failure(.malformed) }
            let number = get64(bytes, p)
            guard number >= 1 else { return .failure(.malformed) }
            body = .increments(SyncIncrementBatch(number: number, wallClock: get64(bytes, p + 8), records: [], helperStates: [state]))
        case .incrementAck:
            guard length == 24 else { return .failure(.wrongLength) }
            let through = get64(bytes, p + 8), missingTo = get64(bytes, p + 16)
            guard missingTo == 0 || missingTo > through else { return .failure(.malformed) }
            body = .incrementAck(epoch: get64(bytes, p), through: through, missingTo: missingTo)
        }
        let sequence = get64(bytes, 16)
        guard sequence >= 1 else { return .failure(.malformed) }
        return .success(SyncMessage(epoch: get64(bytes, 8), sequence: sequence, body: body))
    }

    static func put16(_ v: UInt16, _ out: inout [UInt8]) {
        out += [UInt8(v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func put32(_ v: UInt32, _ out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func put64(_ v: UInt64, _ out: inout [UInt8]) {
        put32(UInt32(v >> 32), &out); put32(UInt32(truncatingIfNeeded: v), &out)
    }

    static func get16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }

    static func get32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func get64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(get32(b, i)) << 32 | UInt64(get32(b, i + 4)) }
}

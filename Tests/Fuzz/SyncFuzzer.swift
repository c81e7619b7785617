// libFuzzer harness for the HA sync channel (Sources/Masqd/Sync/, compiled in with this
// file: those files import only CounterSet and NATCore, linked in). First, the input's bytes also make random increment
// batches (records of any field values with a valid kind, or one helper state of any bytes):
// each must encode to a message that decodes back to the same batch. Then any bytes are a
// run of datagrams from the peer. Each is
// decoded (never a trap; a message that decodes encodes back to the same bytes), then fed to
// a standby and an active SyncSession, which must count each one exactly once (accepted or
// dropped by reason) and stay within their caps; the standby hands on increment batches only
// in number order (each the one after the last, except right after a full resync), and the
// active, which queues increments every round, holds no more than its queue's capacity. So
// that the fuzzer gets past the MAC, a datagram whose first byte is odd is signed with the
// sessions' key before it is fed.
//
// Input: repeated [flags 1][length 2][datagram length bytes]. FUZZ_WRITE_SEEDS=DIR writes
// seeds (one of each message kind, signed) and exits. Built by Tests/Fuzz/run-fuzz.sh.

#if canImport(Glibc)
import Glibc
#endif
import NATCore

func fail(_ message: String) -> Never {
    say("sync-fuzz: INVARIANT BROKEN: \(message)")
    fatalError(message)
}

let key = Array("the fuzzer's shared secret, 32 b".utf8)
let mac = HMACSHA256(key: key)
let maxChunks = 64

func datagrams(_ input: [UInt8]) -> [(sign: Bool, bytes: [UInt8])] {
    var out: [(Bool, [UInt8])] = []
    var i = 0
    while i + 3 <= input.count, out.count < 256 {
        let flags = input[i], length = Int(input[i + 1]) << 8 | Int(input[i + 2])
        i += 3
        let end = min(input.count, i + length)
        out.append((flags & 1 == 1, Array(input[i..<end])))
        i = end
    }
    return out
}

func signed(_ bytes: [UInt8]) -> [UInt8] {
    let body = bytes.count >= SyncMessage.macSize ? Array(bytes.dropLast(SyncMessage.macSize)) : bytes
    return body + mac.authenticate(body)
}

/// Reads the input as a stream of field values for `randomBatches` (zeros past its end).
struct FieldReader {
    let bytes: [UInt8]
    var at = 0
    mutating func u8() -> UInt8 { defer { at += 1 }; return at < bytes.count ? bytes[at] : 0 }
    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }
    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
    mutating func u64() -> UInt64 { UInt64(u32()) << 32 | UInt64(u32()) }
}

/// A flow: protocol, internal address and port, remote address and port.
func flow(_ protocolNumber: UInt8, _ internalAddress: UInt32, _ internalPort: UInt16, _ remoteAddress: UInt32, _ remotePort: UInt16) -> NATFlow {
    NATFlow(protocolNumber: protocolNumber, internalEndpoint: IPv4Endpoint(internalAddress, internalPort),
            remoteEndpoint: IPv4Endpoint(remoteAddress, remotePort))
}

/// Batches made from the input's bytes, as the active makes them: 1 to maxIncrements records
/// of a valid kind, or no records and one helper state of 1 to maxStateBytes bytes.
func randomBatches(_ input: [UInt8]) -> [SyncIncrementBatch] {
    var r = FieldReader(bytes: input)
    var out: [SyncIncrementBatch] = []
    while r.at < input.count, out.count < 8 {
        var batch = SyncIncrementBatch(number: max(1, r.u64()), wallClock: r.u64(), records: [])
        let shape = r.u8()
        if shape & 1 == 0 {
            for _ in 0..<(1 + Int(shape >> 1) % SyncMessage.maxIncrements) {
                let kinds = SyncIncrement.kinds
                let kind = kinds.lowerBound + r.u8() % UInt8(kinds.count), reason = r.u8(), protocolNumber = r.u8()
                let internalAddress = r.u32(), internalPort = r.u16(), externalPort = r.u16(), externalAddress = r.u32()
                let flow = NATFlow(protocolNumber: protocolNumber, internalEndpoint: IPv4Endpoint(internalAddress, internalPort),
                                   remoteEndpoint: IPv4Endpoint(r.u32(), r.u16()))
                batch.records.append(SyncIncrement(kind: kind, reason: reason, flow: flow, externalEndpoint: IPv4Endpoint(externalAddress, externalPort)))
            }
        } else {
            let length = 1 + Int(r.u16()) % SyncHelperState.maxStateBytes
            var state: [UInt8] = []
            for _ in 0..<length { state.append(r.u8()) }
            let protocolNumber = r.u8(), internalEndpoint = IPv4Endpoint(r.u32(), r.u16())
            let flow = NATFlow(protocolNumber: protocolNumber, internalEndpoint: internalEndpoint, remoteEndpoint: IPv4Endpoint(r.u32(), r.u16()))
            batch.helperStates = [SyncHelperState(flow: flow, state: state)]
        }
        out.append(batch)
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    for (n, batch) in randomBatches(input).enumerated() {
        let message = SyncMessage(epoch: 9, sequence: UInt64(n + 1), body: .increments(batch))
        let bytes = message.encoded(with: mac)
        check(bytes.count <= SyncMessage.maxSize, "a batch of \(batch.records.count) records, \(batch.helperStates.count) helper states encodes to \(bytes.count) bytes")
        check(SyncMessage.decode(bytes, mac: mac) == .success(message), "a batch does not decode back to itself: \(batch)")
    }
    var standby = SyncSession(key: key, epoch: 1, resyncInterval: 1_000_000_000, maxChunks: maxChunks)
    var active = SyncSession(key: key, epoch: 2, resyncInterval: 1_000_000_000, maxChunks: maxChunks)
    active.startResync([UInt8](repeating: 7, count: 5000), now: 1)
    var fed: UInt64 = 0
    var now: UInt64 = 10
    var lastApplied: UInt64? = nil // nil: not known (none yet, or a resync's base came)
    for (sign, raw) in datagrams(input) {
        let bytes = sign ? signed(raw) : raw
        if case .success(let message) = SyncMessage.decode(bytes, mac: mac) {
            check(message.encoded(with: mac) == bytes, "a decoded message does not encode back to its bytes")
        }
        now += 7_000_000
        for delivery in standby.receive(bytes, fromPeer: true, now: now, active: false) {
            switch delivery {
            case .snapshot(let snapshot, let base):
                lastApplied = nil // the replay onto the new copy starts after its base
                for batch in standby.snapshotAccepted(base: base) { // (as the engine does with one that decodes)
                    if let last = lastApplied { check(batch.number == last &+ 1, "batch \(batch.number) handed on after \(last)") }
                    lastApplied = batch.number
                }
                check(snapshot.count <= maxChunks * SyncMessage.maxChunkData, "a resync larger than the cap completed")
            case .increments(let batch):
                if let last = lastApplied { check(batch.number == last &+ 1, "batch \(batch.number) handed on after \(last)") }
                let shaped = batch.helperStates.isEmpty ? (1...SyncMessage.maxIncrements).contains(batch.records.count)
                    : batch.records.isEmpty && batch.helperStates.count == 1 && (1...SyncHelperState.maxStateBytes).contains(batch.helperStates[0].state.count)
                check(shaped, "a batch of \(batch.records.count) records and \(batch.helperStates.count) helper states")
                lastApplied = batch.number
            }
        }
        _ = active.receive(bytes, fromPeer: true, now: now, active: true)
        active.queueIncrements([SyncIncrement(kind: 3, reason: 1, flow: flow(17, 1, 2, 0, 0), externalEndpoint: IPv4Endpoint(4, 3))],
                               wallClock: now, now: now)
        fed += 1
        var sent = 0
        standby.poll(now: now, active: false) { _ in sent += 1; return true }
        active.poll(now: now, active: true) { out in
            check(out.count <= SyncMessage.maxSize, "sent a message larger than the largest")
            sent += 1
            return true
        }
        check(sent <= 4 + 2 * SyncSession.sendBudget, "one round sent \(sent) messages")
        check(active.outgoing.chunkCount <= maxChunks, "the resend queue outgrew its cap")
        check(active.outgoingIncrements.outstanding <= SyncSession.incrementQueueBatches, "the increment queue outgrew its cap")
        check(standby.inbox.waitingCount <= SyncSession.inboxRecords, "the inbox outgrew its cap")
    }
    for session in [standby, active] {
        let dropped = SyncDropReason.allCases.reduce(UInt64(0)) { $0 + session.counters.drops($1) }
        check(session.counters[.messagesReceived] + dropped == fed, "\(fed) datagrams fed, \(session.counters[.messagesReceived]) accepted + \(dropped) dropped")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> Int32 {
    guard let directory = getenv("FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return 0 }
    let bodies: [SyncMessage.Body] = [
        .hello(active: true, wantsResync: false), .chunk(resync: 1, index: 0, count: 2, data: [UInt8](repeating: 1, count: SyncMessage.maxChunkData)),
        .chunk(resync: 1, index: 1, count: 2, data: [2, 3]), .ack(epoch: 2, resync: 1, received: 1), .nack(epoch: 2, resync: 1, from: 0, to: 2),
        .increments(SyncIncrementBatch(number: 2, wallClock: 9, records: [SyncIncrement(kind: 3, reason: 1, flow: flow(6, 1, 2, 5, 6),
                                                                                       externalEndpoint: IPv4Endpoint(4, 3))])),
        .incrementAck(epoch: 2, through: 1, missingTo: 3), .hello(active: false, wantsResync: true),
        .increments(SyncIncrementBatch(number: 1, wallClock: 9, records: [], helperStates: [
            SyncHelperState(flow: flow(6, 1, 2, 5, 21), state: [4, 0x66, 0x74, 0x70])])),
    ]
    for (n, body) in bodies.enumerated() {
        let bytes = SyncMessage(epoch: 3, sequence: UInt64(n + 1), body: body).encoded(with: mac)
        let seed = [1, UInt8(bytes.count >> 8), UInt8(truncatingIfNeeded: bytes.count)] + bytes
        let path = "\(directory)/seed-\(n)"
        mkdir(directory, 0o755)
        if let file = fopen(path, "wb") {
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
    }
    exit(0)
}

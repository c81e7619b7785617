// The sync protocol of one router with its peer, without the socket (tests drive it with
// bytes and times): authenticate and admit what arrives, keep the standby's latest full
// resync and the increments after it, deliver the active's with acks, nacks and resends
// (conntrackd's FTFW: chunks by index, increment batches by number).
//
// The active starts a full resync when the peer (re)connects (a new epoch, or its hello
// saying it is a standby that wants one: it has none yet, or could not bring the last up to
// date), every `resyncInterval`, when its events were lost (`eventsLost`), when the standby
// is too far behind for the increments it still holds, and when asked by a nack for a
// resync it no longer has. Between resyncs it streams increments (`queueIncrements`, and a
// helper connection's state as a batch of its own: `queueHelperState`). The
// standby says hello every `helloInterval` (so the active knows it is there), acks the
// chunks it holds from the first without a gap and nacks the first gap it sees, and acks
// the last increment batch it applied, with the gap after it. Times are monotonic nanoseconds.

/// What the standby's session hands the engine, in the order to apply it.
enum SyncDelivery: Equatable {
    /// A full resync's encoded state (the state file's format) and the last increment batch
    /// it includes: replaces the copy if it decodes (then `snapshotAccepted`), else the copy
    /// and the increments after it stay as they were (`noteSnapshotRefused`).
    case snapshot([UInt8], base: UInt64)
    /// Increments to apply to the copy.
    case increments(SyncIncrementBatch)
}

struct SyncSession {
    let mac: HMACSHA256
    /// This router's epoch (its start, wall clock ns): the peer tells a restart by it.
    let epoch: UInt64
    var resyncInterval: UInt64
    static let helloInterval: UInt64 = 500_000_000
    /// A chunk not acknowledged this long after it was sent goes again.
    static let resendAfter: UInt64 = 300_000_000
    /// Chunks sent per round (the main loop's 10 ms): up to 120 KB per round; as many
    /// increment batches besides.
    static let sendBudget = 100
    /// A resync under way is left to finish this long (then a wanted one replaces it).
    static let resyncPatience: UInt64 = 10_000_000_000
    /// Increment batches the active holds unacknowledged (54 records each): beyond, a full resync.
    static let incrementQueueBatches = 8192
    /// Increments the standby holds waiting or kept for replay onto a resync.
    static let inboxRecords = 1 << 19
    /// A peer not heard from for this long is away: the active sends it no chunks (only
    /// hellos) and starts a full resync when it is heard again.
    static let peerTimeout: UInt64 = 3_000_000_000

    private(set) var counters = SyncCounters()
    private var nextSequence: UInt64 = 1
    private var window = SyncReceiveWindow()
    private(set) var outgoing: SyncResendQueue
    private var assembly: SyncSnapshotAssembly
    private(set) var outgoingIncrements = SyncIncrementQueue(capacity: incrementQueueBatches)
    private(set) var inbox = SyncIncrementInbox(maxRecords: inboxRecords)
    /// The last increment batch the resync under way includes.
    private var resyncBase: UInt64 = 0
    /// The peer restarted or came back after a silence: a resync under way (sent into the
    /// silence) is replaced by a fresh one rather than resent.
    private var peerReturned = false
    /// The standby's last resync did not decode: it wants another.
    private var snapshotRefused = false
    /// The standby applied increments (or a gap waits): its increment ack is due.
    private var incrementAckDue = false
    private var nextResync: UInt32 = 1
    private var lastResyncStart: UInt64 = 0
    private var lastHello: UInt64 = 0
    /// Asked for by the protocol; the engine exports the state and calls `startResync`.
    private(set) var resyncWanted = true
    /// The standby's ack or nack to send this round.
    private var pendingReply: SyncMessage.Body?
    private(set) var lastHeardFromPeer: UInt64?
    private(set) var peerIsActive: Bool?

    init(key: [UInt8], epoch: UInt64, resyncInterval: UInt64, maxChunks: Int) {
        mac = HMACSHA256(key: key)
        self.epoch = epoch
        self.resyncInterval = resyncInterval
        outgoing = SyncResendQueue(capacity: maxChunks)
        assembly = SyncSnapshotAssembly(maxChunks: maxChunks)
    }

    /// One datagram from the socket. `fromPeer`: its source is --sync-peer's address.
    /// Returns what the standby applies, in order: a full resync this one completed, the
    /// increments it made applicable.
    mutating func receive(_ bytes: [UInt8], fromPeer: Bool, now: UInt64, active: Bool) -> [SyncDelivery] {
        guard fromPeer else { counters.drop(.notPeer); return [] }
        let message: SyncMessage
        switch SyncMessage.decode(bytes, mac: mac) {
        case .success(let m): message = m
        case .failure(let reason): counters.drop(reason); return []
        }
        let present = peerPresent(now: now)
        switch window.admit(epoch: message.epoch, sequence: message.sequence, currentSilent: !present) {
        case .drop(let reason): counters.drop(reason); return []
        case .accept(let newEpoch):
            if newEpoch {
                counters[.peerConnects] &+= 1
                assembly = SyncSnapshotAssembly(maxChunks: assembly.maxChunks) // its resync ids start again
                inbox.reset() // and its batch numbers
                resyncWanted = true // a (re)connected peer gets the whole state
                peerReturned = true
            }
        }
        counters[.messagesReceived] &+= 1
        if !present { // back after a silence: it may have missed anything
            resyncWanted = true
            peerReturned = true
        }
        lastHeardFromPeer = now
        switch message.body {
        case .hello(let peerActive, let wantsResync):
            peerIsActive = peerActive
            if active, !peerActive, wantsResync, !resyncWanted, outgoing.outstanding == 0 { // (one under way is the answer)
                counters[.resyncsRequested] &+= 1
                resyncWanted = true
            }
            return []
        case .chunk(let resync, let index, let count, let data):
            peerIsActive = true
            guard !active else { return [] } // two actives: each keeps its own state
            if let done = assembly.lastCompleted, resync <= done {
                // A late copy of a resync already complete: ack it whole again (the ack may have
                // been lost), never nack it.
                if resync == done { pendingReply = .ack(epoch: message.epoch, resync: resync, received: count) }
                return []
            }
            switch assembly.add(resync: resync, index: index, count: count, data: data) {
            case .incomplete:
                let progress = assembly.progress
                pendingReply = nackOrAck(resync: resync, received: progress.received, index: index)
                return []
            case .refused:
                counters[.snapshotsRefused] &+= 1
                return []
            case .complete(let resyncData):
                pendingReply = .ack(epoch: message.epoch, resync: resync, received: count)
                guard resyncData.count >= 8 else { counters[.snapshotsRefused] &+= 1; snapshotRefused = true; return [] }
                return [.snapshot(Array(resyncData[8...]), base: SyncMessage.get64(resyncData, 0))]
            }
        case .increments(let batch):
            peerIsActive = true
            guard !active else { return [] }
            counters[.incrementsReceived] &+= UInt64(batch.itemCount)
            incrementAckDue = true
            return inbox.add(batch).map { .increments($0) }
        case .ack(let ackedEpoch, let resync, let received):
            if ackedEpoch == epoch { outgoing.acknowledge(resync: resync, received: received) }
            return []
        case .nack(let ackedEpoch, let resync, let from, let to):
            guard ackedEpoch == epoch else { return [] }
            if resync == outgoing.resync, outgoing.chunkCount > 0 {
                outgoing.resendRequested(resync: resync, from: from, to: to, now: now)
            } else {
                resyncWanted = true // a resync we no longer have: the peer is too far behind
            }
            return []
        case .incrementAck(let ackedEpoch, let through, let missingTo):
            guard active, ackedEpoch == epoch else { return [] }
            outgoingIncrements.acknowledge(through: through)
            if missingTo > 0, !outgoingIncrements.resendRequested(from: through &+ 1, to: missingTo, now: now) {
                // Batches no longer held: only a full resync that includes them helps.
                let underWay = outgoing.outstanding > 0 && resyncBase >= missingTo
                if !underWay, !resyncWanted {
                    counters[.resyncsForIncrementsLost] &+= 1
                    resyncWanted = true
                }
            }
            return []
        }
    }

    /// The standby: whether its copy needs a full resync (none yet, or one it could not bring
    /// up to date or decode).
    var wantsResync: Bool { inbox.applied == nil || inbox.needsResync || snapshotRefused }

    /// The active: `records` (the events taken from the translator this round) as increment
    /// batches to stream. Nothing is queued while the peer is away (its return brings a resync).
    mutating func queueIncrements(_ records: [SyncIncrement], wallClock: UInt64, now: UInt64) {
        queueIncrements(records[...], wallClock: wallClock, now: now)
    }

    mutating func queueIncrements(_ records: ArraySlice<SyncIncrement>, wallClock: UInt64, now: UInt64) {
        guard !records.isEmpty, peerPresent(now: now) else { return }
        let covered = outgoing.outstanding > 0 ? resyncBase : 0
        var start = records.startIndex
        while start < records.endIndex {
            let end = min(start + SyncMessage.maxIncrements, records.endIndex)
            switch outgoingIncrements.append(Array(records[start..<end]), wallClock: wallClock, coveredThrough: covered) {
            case .queued, .droppedCovered: break
            case .overflowed:
                counters[.incrementQueueOverflows] &+= 1
                resyncWanted = true
            }
            start = end
        }
    }

    /// The active: one helper connection's state (read when its event was taken, after the
    /// records of the events before it were queued) as a batch of its own.
    mutating func queueHelperState(_ state: SyncHelperState, wallClock: UInt64, now: UInt64) {
        guard peerPresent(now: now) else { return }
        let covered = outgoing.outstanding > 0 ? resyncBase : 0
        if outgoingIncrements.append([], helperStates: [state], wallClock: wallClock, coveredThrough: covered) == .overflowed {
            counters[.incrementQueueOverflows] &+= 1
            resyncWanted = true
        }
    }

    /// The active's translator lost events (its ring overflowed): increments alone would
    /// leave the standby's copy diverged, so a full resync follows.
    mutating func eventsLost() {
        counters[.resyncsForLostEvents] &+= 1
        resyncWanted = true
    }

    /// `masqd role`: a standby's copy, or an active's increments, mean nothing in the other
    /// role. The copy starts again: a new standby asks for a resync, and a new active sends
    /// one while its peer is heard (a peer that stayed standby may hold a copy of this
    /// router's older state, which increments alone would not correct).
    mutating func roleChanged(active: Bool) {
        inbox.reset()
        snapshotRefused = false
        assembly = SyncSnapshotAssembly(maxChunks: assembly.maxChunks)
        resyncWanted = active
    }

    /// The standby applied `records` increments.
    mutating func noteIncrementsApplied(_ records: Int) { counters[.incrementsApplied] &+= UInt64(records) }

    /// The ack of the chunks held without a gap from the first, or a nack for the first gap.
    private func nackOrAck(resync: UInt32, received: Int, index: UInt32) -> SyncMessage.Body {
        let prefix = assembly.contiguousPrefix
        if index > prefix { return .nack(epoch: window.epoch, resync: resync, from: prefix, to: index - 1) }
        return .ack(epoch: window.epoch, resync: resync, received: prefix)
    }

    /// The standby decoded the resync that includes every batch up to `base` and made it its
    /// copy: the batches to apply to it now, in order (SyncIncrementInbox.rebase).
    mutating func snapshotAccepted(base: UInt64) -> [SyncIncrementBatch] {
        counters[.snapshotsReceived] &+= 1
        snapshotRefused = false
        incrementAckDue = true
        return inbox.rebase(base)
    }

    /// The resync did not decode: the copy stays, and so does the inbox (the increments after
    /// the copy's base go on applying to it); the standby asks for another.
    mutating func noteSnapshotRefused() {
        counters[.snapshotsRefused] &+= 1
        snapshotRefused = true
    }

    /// The active, with the state just exported and encoded (after queueing the increments
    /// of every event before the export): queues it as a new full resync, which includes
    /// every increment batch so far.
    mutating func startResync(_ encoded: [UInt8], now: UInt64) {
        resyncWanted = false
        peerReturned = false
        lastResyncStart = now
        resyncBase = outgoingIncrements.lastNumber
        var data: [UInt8] = []
        data.reserveCapacity(8 + encoded.count)
        SyncMessage.put64(resyncBase, &data)
        data += encoded
        if outgoing.start(resync: nextResync, encoded: data) {
            nextResync &+= 1
            counters[.resyncsSent] &+= 1
        } else {
            counters[.resyncsTooLarge] &+= 1
        }
    }

    /// Whether the peer was heard from within `peerTimeout`.
    func peerPresent(now: UInt64) -> Bool {
        guard let last = lastHeardFromPeer else { return false }
        return now &- last < Self.peerTimeout
    }

    /// Whether the active should export its state now for a resync.
    func resyncDue(now: UInt64, active: Bool) -> Bool {
        guard active, peerPresent(now: now) else { return false }
        if outgoing.outstanding > 0, !peerReturned, now &- lastResyncStart < min(resyncInterval * 4, Self.resyncPatience) { return false } // let the one under way finish
        return resyncWanted || now &- lastResyncStart >= resyncInterval
    }

    /// One round: hello when due, the standby's acks or nacks, the active's increments and
    /// chunks due. `send` returns false when the socket takes no more.
    mutating func poll(now: UInt64, active: Bool, send: ([UInt8]) -> Bool) {
        if lastHello == 0 || now &- lastHello >= Self.helloInterval {
            lastHello = now
            transmit(.hello(active: active, wantsResync: !active && wantsResync), send)
            if inbox.gap != nil { incrementAckDue = true } // the nack again, in case it was lost
        }
        if let reply = pendingReply {
            pendingReply = nil
            transmit(reply, send)
        }
        if incrementAckDue, !active, let applied = inbox.applied {
            incrementAckDue = false
            transmit(.incrementAck(epoch: window.epoch, through: applied, missingTo: inbox.gap?.upperBound ?? 0), send)
        }
        guard active, peerPresent(now: now) else { return }
        sendIncrements(now: now, send)
        guard outgoing.outstanding > 0 else { return }
        let resync = outgoing.resync, count = UInt32(outgoing.chunkCount)
        // The queue is taken out while it sends: each chunk goes with the next sequence number.
        var queue = SyncResendQueue(capacity: 1)
        swap(&queue, &outgoing)
        var sequence = nextSequence, sentCount: UInt64 = 0, deferred: UInt64 = 0, bytes: UInt64 = 0
        let (mac, epoch) = (self.mac, self.epoch)
        let sent = queue.sendDue(now: now, after: Self.resendAfter, budget: Self.sendBudget) { index, data in
            let message = SyncMessage(epoch: epoch, sequence: sequence, body: .chunk(resync: resync, index: index, count: count, data: data))
            let encoded = message.encoded(with: mac)
            guard send(encoded) else { deferred += 1; return false }
            sequence &+= 1
            sentCount += 1
            bytes += UInt64(encoded.count)
            return true
        }
        swap(&queue, &outgoing)
        nextSequence = sequence
        counters[.messagesSent] &+= sentCount
        counters[.sendsDeferred] &+= deferred
        counters[.messagesResent] &+= UInt64(sent.again)
        counters[.resyncBytesSent] &+= bytes
    }

    private mutating func sendIncrements(now: UInt64, _ send: ([UInt8]) -> Bool) {
        guard outgoingIncrements.outstanding > 0 else { return }
        var queue = SyncIncrementQueue(capacity: 1)
        swap(&queue, &outgoingIncrements)
        var sequence = nextSequence, records: UInt64 = 0, bytes: UInt64 = 0, deferred: UInt64 = 0
        let (mac, epoch) = (self.mac, self.epoch)
        let sent = queue.sendDue(now: now, after: Self.resendAfter, budget: Self.sendBudget) { batch, again in
            let encoded = SyncMessage(epoch: epoch, sequence: sequence, body: .increments(batch)).encoded(with: mac)
            guard send(encoded) else { deferred += 1; return false }
            sequence &+= 1
            if !again { records += UInt64(batch.itemCount) }
            bytes += UInt64(encoded.count)
            return true
        }
        swap(&queue, &outgoingIncrements)
        nextSequence = sequence
        counters[.messagesSent] &+= UInt64(sent.fresh + sent.again)
        counters[.incrementBatchesSent] &+= UInt64(sent.fresh)
        counters[.incrementBatchesResent] &+= UInt64(sent.again)
        counters[.incrementRecordsSent] &+= records
        counters[.incrementBytesSent] &+= bytes
        counters[.sendsDeferred] &+= deferred
    }

    @discardableResult
    private mutating func transmit(_ body: SyncMessage.Body, _ send: ([UInt8]) -> Bool) -> Bool {
        let message = SyncMessage(epoch: epoch, sequence: nextSequence, body: body)
        guard send(message.encoded(with: mac)) else { counters[.sendsDeferred] &+= 1; return false }
        nextSequence &+= 1
        counters[.messagesSent] &+= 1
        return true
    }
}

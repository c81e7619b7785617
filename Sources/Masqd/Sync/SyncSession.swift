// The sync protocol of one router with its peer, without the socket (tests drive it with
// bytes and times): authenticate and admit what arrives, keep the standby's latest full
// resync, deliver the active's with acks, nacks and resends (conntrackd's FTFW, by chunk).
//
// The active starts a full resync when the peer (re)connects (a new epoch or its hello
// saying it is standby and has nothing), every `resyncInterval`, and when asked by a nack
// for a resync it no longer has. The standby says hello every `helloInterval` (so the
// active knows it is there), acks the chunks it holds from the first without a gap, and
// nacks the first gap it sees. Times are monotonic nanoseconds.

struct SyncSession {
    let mac: HMACSHA256
    /// This router's epoch (its start, wall clock ns): the peer tells a restart by it.
    let epoch: UInt64
    var resyncInterval: UInt64
    static let helloInterval: UInt64 = 500_000_000
    /// A chunk not acknowledged this long after it was sent goes again.
    static let resendAfter: UInt64 = 300_000_000
    /// Chunks sent per round (the main loop's 10 ms): up to 120 KB per round.
    static let sendBudget = 100
    /// A peer not heard from for this long is away: the active sends it no chunks (only
    /// hellos) and starts a full resync when it is heard again.
    static let peerTimeout: UInt64 = 3_000_000_000

    private(set) var counters = SyncCounters()
    private var nextSequence: UInt64 = 1
    private var window = SyncReceiveWindow()
    private(set) var outgoing: SyncResendQueue
    private var assembly: SyncSnapshotAssembly
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
    /// Returns a full resync's bytes when this one completed it (the standby keeps those).
    mutating func receive(_ bytes: [UInt8], fromPeer: Bool, now: UInt64, active: Bool) -> [UInt8]? {
        guard fromPeer else { counters.drop(.notPeer); return nil }
        let message: SyncMessage
        switch SyncMessage.decode(bytes, mac: mac) {
        case .success(let m): message = m
        case .failure(let reason): counters.drop(reason); return nil
        }
        switch window.admit(epoch: message.epoch, sequence: message.sequence) {
        case .drop(let reason): counters.drop(reason); return nil
        case .accept(let newEpoch):
            if newEpoch {
                counters.peerConnects &+= 1
                assembly = SyncSnapshotAssembly(maxChunks: assembly.maxChunks) // its resync ids start again
                resyncWanted = true // a (re)connected peer gets the whole state
            }
        }
        counters.messagesReceived &+= 1
        if !peerPresent(now: now) { resyncWanted = true } // back after a silence: it may have missed anything
        lastHeardFromPeer = now
        switch message.body {
        case .hello(let peerActive):
            peerIsActive = peerActive
            return nil
        case .chunk(let resync, let index, let count, let data):
            peerIsActive = true
            guard !active else { return nil } // two actives: each keeps its own state
            switch assembly.add(resync: resync, index: index, count: count, data: data) {
            case .incomplete:
                let progress = assembly.progress
                pendingReply = nackOrAck(resync: resync, received: progress.received, index: index)
                return nil
            case .refused:
                counters.snapshotsRefused &+= 1
                return nil
            case .complete(let snapshot):
                pendingReply = .ack(epoch: message.epoch, resync: resync, received: count)
                return snapshot
            }
        case .ack(let ackedEpoch, let resync, let received):
            if ackedEpoch == epoch { outgoing.acknowledge(resync: resync, received: received) }
            return nil
        case .nack(let ackedEpoch, let resync, let from, let to):
            guard ackedEpoch == epoch else { return nil }
            if resync == outgoing.resync, outgoing.chunkCount > 0 {
                outgoing.resendRequested(resync: resync, from: from, to: to)
            } else {
                resyncWanted = true // a resync we no longer have: the peer is too far behind
            }
            return nil
        }
    }

    /// The ack of the chunks held without a gap from the first, or a nack for the first gap.
    private func nackOrAck(resync: UInt32, received: Int, index: UInt32) -> SyncMessage.Body {
        let prefix = assembly.contiguousPrefix
        if index > prefix { return .nack(epoch: window.epoch, resync: resync, from: prefix, to: index - 1) }
        return .ack(epoch: window.epoch, resync: resync, received: prefix)
    }

    mutating func noteSnapshotReceived() { counters.snapshotsReceived &+= 1 }
    mutating func noteSnapshotRefused() { counters.snapshotsRefused &+= 1 }

    /// The active, with the state just exported and encoded: queues it as a new full resync.
    mutating func startResync(_ encoded: [UInt8], now: UInt64) {
        resyncWanted = false
        lastResyncStart = now
        if outgoing.start(resync: nextResync, encoded: encoded) {
            nextResync &+= 1
            counters.resyncsSent &+= 1
        } else {
            counters.resyncsTooLarge &+= 1
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
        if outgoing.outstanding > 0, now &- lastResyncStart < resyncInterval * 4 { return false } // let the one under way finish
        return resyncWanted || now &- lastResyncStart >= resyncInterval
    }

    /// One round: hello when due, the standby's ack or nack, the active's chunks due.
    /// `send` returns false when the socket takes no more.
    mutating func poll(now: UInt64, active: Bool, send: ([UInt8]) -> Bool) {
        if lastHello == 0 || now &- lastHello >= Self.helloInterval {
            lastHello = now
            transmit(.hello(active: active), send)
        }
        if let reply = pendingReply {
            pendingReply = nil
            transmit(reply, send)
        }
        guard active, outgoing.outstanding > 0, peerPresent(now: now) else { return }
        let resync = outgoing.resync, count = UInt32(outgoing.chunkCount)
        // The queue is taken out while it sends: each chunk goes with the next sequence number.
        var queue = SyncResendQueue(capacity: 1)
        swap(&queue, &outgoing)
        var sequence = nextSequence, sentCount: UInt64 = 0, deferred: UInt64 = 0
        let (mac, epoch) = (self.mac, self.epoch)
        let sent = queue.sendDue(now: now, after: Self.resendAfter, budget: Self.sendBudget) { index, data in
            let message = SyncMessage(epoch: epoch, sequence: sequence, body: .chunk(resync: resync, index: index, count: count, data: data))
            guard send(message.encoded(with: mac)) else { deferred += 1; return false }
            sequence &+= 1
            sentCount += 1
            return true
        }
        swap(&queue, &outgoing)
        nextSequence = sequence
        counters.messagesSent &+= sentCount
        counters.sendsDeferred &+= deferred
        counters.messagesResent &+= UInt64(sent.again)
    }

    @discardableResult
    private mutating func transmit(_ body: SyncMessage.Body, _ send: ([UInt8]) -> Bool) -> Bool {
        let message = SyncMessage(epoch: epoch, sequence: nextSequence, body: body)
        guard send(message.encoded(with: mac)) else { counters.sendsDeferred &+= 1; return false }
        nextSequence &+= 1
        counters.messagesSent &+= 1
        return true
    }
}

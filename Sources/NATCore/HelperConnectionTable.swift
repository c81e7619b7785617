// Per-connection state of the connections that have an application helper: for each
// direction, the bytes of an unfinished line held back, and the log of edits made — which
// maps sequence and acknowledgement numbers across the edits and rewrites retransmissions
// identically. Fixed-size rows and one slab, allocated once; bounded by HelperLimits.

/// One edit in a direction's stream: original bytes [start, end) became `length` bytes.
struct StreamEdit: BitwiseCopyable {
    var start: UInt32
    var end: UInt32
    /// Sum of (new length - old length) over this edit and all before it.
    var cumulativeDelta: Int32
    var length: UInt8
}

/// The sequence-number state of one direction (the bytes one endpoint sends).
struct StreamState: BitwiseCopyable {
    /// Original sequence number of the next byte not yet seen.
    var nextSequence: UInt32 = 0
    var started = false
    /// Bytes before `nextSequence` held back (not yet sent on).
    var heldLength: UInt16 = 0
    var heldRetransmissions: UInt8 = 0
    var editCount: UInt8 = 0
    /// Delta of edits dropped from the log once acknowledged.
    var baseDelta: Int32 = 0
    /// Highest acknowledgement from the peer, in original sequence numbers.
    var acknowledged: UInt32 = 0
    var acknowledgedSeen = false

    static let initial = StreamState()
}

struct HelperConnection: BitwiseCopyable {
    /// Owning session; -1 marks a free row.
    var session: Int32
    var helperIndex: UInt8
    var clientIsInternal: Bool
    /// [0]: bytes sent by the internal endpoint; [1]: bytes sent by the remote endpoint.
    var streams: (StreamState, StreamState)

    static let empty = HelperConnection(session: -1, helperIndex: 0, clientIsInternal: false, streams: (.initial, .initial))
}

struct HelperConnectionTable: ~Copyable {
    private(set) var store: RowStore<HelperConnection>
    /// Per row: two streams of [held bytes | edit records | replacement bytes], then the helper's state.
    private let slab: UnsafeMutableRawPointer
    let heldCapacity: Int

    static let stateBytes = 64
    static let editsBytes = HelperLimits.editLog * MemoryLayout<StreamEdit>.stride
    static let replacementBytes = HelperLimits.editLog * HelperLimits.maxReplacement
    var streamBytes: Int { heldCapacity + HelperConnectionTable.editsBytes + HelperConnectionTable.replacementBytes }
    var rowBytes: Int { 2 * streamBytes + HelperConnectionTable.stateBytes }

    init(capacity: Int, heldBytes: Int) {
        store = RowStore(capacity: capacity, empty: .empty)
        heldCapacity = (heldBytes + 7) & ~7
        let rowBytes = 2 * (heldCapacity + HelperConnectionTable.editsBytes + HelperConnectionTable.replacementBytes) + HelperConnectionTable.stateBytes
        slab = .allocate(byteCount: max(rowBytes * capacity, 1), alignment: 16)
    }

    deinit { slab.deallocate() }

    var count: Int { store.count }

    @inline(__always)
    func pointer(_ row: Int32) -> UnsafeMutablePointer<HelperConnection> { store.rows + Int(row) }

    mutating func insert(session: Int32, helperIndex: Int, clientIsInternal: Bool) -> Int32 {
        let row = store.take()
        guard row >= 0 else { return -1 }
        store.rows[Int(row)] = HelperConnection(
            session: session, helperIndex: UInt8(helperIndex), clientIsInternal: clientIsInternal, streams: (.initial, .initial))
        state(row).initializeMemory(as: UInt8.self, repeating: 0, count: HelperConnectionTable.stateBytes)
        return row
    }

    mutating func remove(_ row: Int32) { store.give(row, empty: .empty) }

    mutating func removeAll() { store.reset(empty: .empty) }

    // MARK: slab regions

    @inline(__always)
    private func streamBase(_ row: Int32, _ stream: Int) -> UnsafeMutableRawPointer {
        slab + Int(row) * rowBytes + stream * streamBytes
    }

    @inline(__always)
    func held(_ row: Int32, _ stream: Int) -> UnsafeMutableRawPointer { streamBase(row, stream) }

    @inline(__always)
    func edits(_ row: Int32, _ stream: Int) -> UnsafeMutablePointer<StreamEdit> {
        (streamBase(row, stream) + heldCapacity).assumingMemoryBound(to: StreamEdit.self)
    }

    @inline(__always)
    func replacement(_ row: Int32, _ stream: Int, _ index: Int) -> UnsafeMutableRawPointer {
        streamBase(row, stream) + heldCapacity + HelperConnectionTable.editsBytes + index * HelperLimits.maxReplacement
    }

    @inline(__always)
    func state(_ row: Int32) -> UnsafeMutableRawPointer { slab + Int(row) * rowBytes + 2 * streamBytes }
}

/// Sequence-space comparisons (RFC 1982 style, 32-bit wrap).
@inline(__always) func seqLE(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: b &- a) >= 0 }
@inline(__always) func seqLT(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: b &- a) > 0 }

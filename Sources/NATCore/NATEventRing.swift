// The NAT events waiting for their consumer: a fixed ring allocated once (capacity a power
// of two), so recording never allocates. When it is full the newest event is not stored
// and counted as lost: the consumer drains often (after every batch), so a full ring means
// a burst larger than it (a WAN address change flushing more translations than it holds).
// The daemon's audit queue is one too (Masqd/AuditExporter.swift). The ring is its storage's
// one owner: not copyable, freed by its deinit.

public struct NATEventRing: ~Copyable {
    private var storage: UnsafeMutablePointer<NATEvent>?
    public private(set) var capacity = 0
    private var mask = 0
    private var head = 0
    public private(set) var count = 0

    /// Capacity 0: disabled, nothing is recorded.
    public init() {}

    deinit { storage?.deallocate() }

    /// Replaces the storage; waiting events are dropped. `capacity` is rounded up to a power
    /// of two; 0 frees it (nothing is recorded).
    public mutating func allocate(capacity requested: Int) {
        freeStorage()
        guard requested > 0 else { return }
        var size = 1
        while size < requested { size <<= 1 }
        storage = .allocate(capacity: size)
        // Touched now, at start: no page fault for the first events on the packet path.
        storage!.initialize(repeating: NATEvent(timeNanoseconds: 0, kind: .mappingCreated, reason: .outbound, protocolNumber: 0,
                                                internalAddress: 0, internalPort: 0, externalAddress: 0, externalPort: 0), count: size)
        capacity = size
        mask = size - 1
    }

    private mutating func freeStorage() {
        storage?.deallocate()
        storage = nil
        capacity = 0
        mask = 0
        head = 0
        count = 0
    }

    /// False (nothing stored) when full.
    @inline(__always)
    public mutating func push(_ event: NATEvent) -> Bool {
        guard count < capacity, let storage else { return false }
        storage[(head + count) & mask] = event
        count += 1
        return true
    }

    /// Moves every waiting event into `other` (after its own), oldest first, in at most four
    /// block copies; the ones that do not fit are dropped. Returns how many were dropped.
    public mutating func move(into other: inout NATEventRing) -> Int {
        let dropped = copy(into: &other)
        count = 0
        head = 0
        return dropped
    }

    /// `move` without emptying this ring: for a consumer that is not the last (the fast path
    /// before the audit exporter). Returns how many did not fit in `other`.
    public func copy(into other: inout NATEventRing) -> Int {
        guard count > 0, let storage else { return 0 }
        let copying = min(count, other.capacity - other.count)
        var copied = 0
        var source = head
        while copied < copying {
            // The longest run contiguous in both rings.
            let target = (other.head + other.count) & other.mask
            let run = min(copying - copied, capacity - source, other.capacity - target)
            (other.storage! + target).update(from: storage + source, count: run)
            source = (source + run) & mask
            other.count += run
            copied += run
        }
        return count - copying
    }

    /// Empties the ring (the events' last consumer took a copy).
    public mutating func removeAll() {
        count = 0
        head = 0
    }

    /// Hands every waiting event to `body`, oldest first, and empties the ring.
    public mutating func drain(_ body: (NATEvent) -> Void) {
        guard let storage else { return }
        while count > 0 {
            let event = storage[head]
            head = (head + 1) & mask
            count -= 1
            body(event)
        }
    }
}

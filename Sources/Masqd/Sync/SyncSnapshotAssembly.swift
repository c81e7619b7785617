// The standby's side of a full resync: the chunks of one encoded state snapshot, gathered
// in any order until every one is there. One resync at a time: a chunk of a newer resync
// drops an unfinished older one. Bounded: a resync of more chunks than `maxChunks` (what the
// standby's own table caps can hold) is refused, so memory is at most maxChunks × 1200 bytes.
// No imports (compiled into the fuzz target).

struct SyncSnapshotAssembly {
    enum Outcome: Equatable {
        case incomplete
        /// Every chunk arrived: the encoded snapshot.
        case complete([UInt8])
        /// Dropped: larger than `maxChunks`, an older resync, or a chunk that disagrees with
        /// the ones before it (another count or size).
        case refused
    }

    let maxChunks: Int
    private(set) var resync: UInt32?
    private var chunks: [[UInt8]?] = []
    private var received = 0
    private var prefix = 0
    /// The last resync completed: its late duplicates are ignored.
    private(set) var lastCompleted: UInt32?

    init(maxChunks: Int) { self.maxChunks = max(1, maxChunks) }

    mutating func add(resync: UInt32, index: UInt32, count: UInt32, data: [UInt8]) -> Outcome {
        guard Int(count) <= maxChunks, index < count else { return .refused }
        if let lastCompleted, resync <= lastCompleted { return .incomplete } // a duplicate or older: nothing new
        if self.resync != resync {
            if let current = self.resync, resync < current { return .refused }
            self.resync = resync
            chunks = [[UInt8]?](repeating: nil, count: Int(count))
            received = 0
            prefix = 0
        }
        guard chunks.count == Int(count) else { return .refused }
        // Every chunk but the last is full.
        guard data.count <= SyncMessage.maxChunkData, index == count - 1 || data.count == SyncMessage.maxChunkData else { return .refused }
        if chunks[Int(index)] == nil {
            chunks[Int(index)] = data
            received += 1
            while prefix < chunks.count, chunks[prefix] != nil { prefix += 1 }
        }
        guard received == chunks.count else { return .incomplete }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chunks.count * SyncMessage.maxChunkData)
        for chunk in chunks { bytes += chunk! }
        lastCompleted = resync
        self.resync = nil
        chunks = []
        received = 0
        prefix = 0
        return .complete(bytes)
    }

    /// How many chunks from the first of the resync in progress arrived without a gap.
    var contiguousPrefix: UInt32 { UInt32(prefix) }

    /// Chunks of the resync in progress that have arrived, and how many it has.
    var progress: (received: Int, of: Int) { (received, chunks.count) }
}

// The caps of the fragment reassembler, and the fixed-size storage they size. Everything is
// allocated once in `FragmentReassembler.init`; whatever arrives, memory never grows.

public struct FragmentLimits: Sendable, Equatable {
    /// Bytes of fragment storage: the data blocks (a fragment occupies whole blocks, so a
    /// 1-byte fragment costs a full block) plus one bookkeeping record per fragment. The
    /// storage is carved out of exactly this budget at init; `bytesHeld` never exceeds it.
    public var maxBytes: Int
    /// Datagrams in reassembly at once.
    public var maxDatagrams: Int
    /// Datagrams in reassembly at once from one source address in one direction; a new one
    /// beyond it takes the place of that source's oldest incomplete one.
    public var maxDatagramsPerSource: Int
    /// Fragments of one datagram (FreeBSD caps this at 16; 128 covers a 64 KiB datagram cut
    /// for a 576-byte MTU). Bounds the per-fragment work of the sorted insert.
    public var maxFragmentsPerDatagram: Int
    /// Fragments held at once. Each one is an NFQUEUE entry still waiting for its verdict, so
    /// this must stay well below the queue's length: a flood of fragments must not fill the
    /// kernel queue, where it would stall every other packet.
    public var maxFragmentsHeld: Int
    /// Time from a datagram's first fragment to its discard if still incomplete (not
    /// extended by later fragments, like Linux's ipfrag_time).
    public var timeout: NATDuration

    public init(
        maxBytes: Int = 4 << 20,
        maxDatagrams: Int = 1024,
        maxDatagramsPerSource: Int = 64,
        maxFragmentsPerDatagram: Int = 128,
        maxFragmentsHeld: Int = 2048,
        timeout: NATDuration = .seconds(30)
    ) {
        self.maxFragmentsHeld = maxFragmentsHeld
        self.maxBytes = maxBytes
        self.maxDatagrams = maxDatagrams
        self.maxDatagramsPerSource = maxDatagramsPerSource
        self.maxFragmentsPerDatagram = maxFragmentsPerDatagram
        self.timeout = timeout
    }

    /// Data bytes per storage block.
    public static let blockSize = 256

    /// What one block costs against `maxBytes`: its data and its chain link.
    static let blockCost = blockSize + MemoryLayout<Int32>.stride
    /// What one fragment record costs against `maxBytes`: the record and its free-list slot.
    static let recordCost = MemoryLayout<FragmentRecord>.stride + MemoryLayout<Int32>.stride

    /// Blocks carved out of `maxBytes`, sized so that every block can carry its own fragment
    /// record (each held fragment occupies at least one block, so records never run out first).
    var blockCount: Int { maxBytes / (FragmentLimits.blockCost + FragmentLimits.recordCost) }
}

/// One held fragment: where its payload sits in the datagram and in the block pool.
struct FragmentRecord: BitwiseCopyable {
    /// Payload offset in the datagram, in bytes.
    var offset: Int32
    var length: Int32
    var firstBlock: Int32
    /// Next fragment of the same datagram by offset; -1 at the end.
    var next: Int32
    var token: UInt32
    var moreFragments: Bool

    static let empty = FragmentRecord(offset: 0, length: 0, firstBlock: -1, next: -1, token: 0, moreFragments: false)
}

/// Fixed-size data blocks chained through a link array; free blocks form one chain.
/// Taking n blocks cuts the first n off the free chain, already linked in order. The pool
/// owns its memory (not copyable: the links a FixedBuffer, the blocks freed by its deinit).
struct FragmentBlockPool: ~Copyable {
    let data: UnsafeMutableRawPointer
    let next: FixedBuffer<Int32>
    let capacity: Int
    private(set) var freeHead: Int32
    private(set) var freeCount: Int

    init(capacity: Int) {
        self.capacity = capacity
        data = .allocate(byteCount: max(capacity, 1) * FragmentLimits.blockSize, alignment: 16)
        next = FixedBuffer(count: max(capacity, 1), repeating: -1)
        for i in 0..<capacity { next[i] = i + 1 < capacity ? Int32(i + 1) : -1 }
        freeHead = capacity > 0 ? 0 : -1
        freeCount = capacity
    }

    deinit { data.deallocate() }

    var inUse: Int { capacity - freeCount }

    @inline(__always)
    static func blocksFor(_ length: Int) -> Int { (length + FragmentLimits.blockSize - 1) / FragmentLimits.blockSize }

    @inline(__always)
    func block(_ index: Int32) -> UnsafeMutableRawPointer { data + Int(index) * FragmentLimits.blockSize }

    /// A chain of `count` (> 0) blocks, or -1 if fewer are free.
    mutating func take(_ count: Int) -> Int32 {
        guard count > 0, count <= freeCount else { return -1 }
        let head = freeHead
        var last = head
        for _ in 1..<count { last = next[Int(last)] }
        freeHead = next[Int(last)]
        next[Int(last)] = -1
        freeCount -= count
        return head
    }

    /// Returns a chain of `count` blocks taken with `take`.
    mutating func give(_ head: Int32, count: Int) {
        guard count > 0 else { return }
        var last = head
        for _ in 1..<count { last = next[Int(last)] }
        next[Int(last)] = freeHead
        freeHead = head
        freeCount += count
    }

    /// Copies `count` bytes into the chain starting at `head`.
    func write(_ head: Int32, from source: UnsafeRawPointer, count: Int) {
        var block = head
        var done = 0
        while done < count {
            let n = min(FragmentLimits.blockSize, count - done)
            self.block(block).copyMemory(from: source + done, byteCount: n)
            done += n
            block = next[Int(block)]
        }
    }

    /// Copies `count` bytes out of the chain starting at `head`.
    func read(_ head: Int32, into destination: UnsafeMutableRawPointer, count: Int) {
        var block = head
        var done = 0
        while done < count {
            let n = min(FragmentLimits.blockSize, count - done)
            (destination + done).copyMemory(from: self.block(block), byteCount: n)
            done += n
            block = next[Int(block)]
        }
    }

    /// True if the chain starting at `head` holds the same `count` bytes as `other`.
    func equals(_ head: Int32, _ other: UnsafeRawPointer, count: Int) -> Bool {
        var block = head
        var done = 0
        while done < count {
            let n = min(FragmentLimits.blockSize, count - done)
            let a = UnsafeRawPointer(self.block(block))
            let b = other + done
            var i = 0
            while i + 8 <= n {
                if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                    return false
                }
                i += 8
            }
            while i < n {
                if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
                i += 1
            }
            done += n
            block = next[Int(block)]
        }
        return true
    }
}

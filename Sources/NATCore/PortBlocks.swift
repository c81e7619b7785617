// Port block allocation (RFC 7422 style, `--port-block-size`): each internal host gets blocks
// of `size` consecutive ports on its external address and takes every mapping's port (TCP,
// UDP and ICMP identifiers alike) from them, so one "block allocated" line tells an auditor
// which host used any port of the block over its whole life, instead of one line per flow.

/// Port blocks: off (nil in NATConfiguration) by default.
public struct PortBlockSettings: Sendable, Equatable {
    /// Ports per block. Blocks are cut from the port range from its start; the ports left over
    /// at its top (when the range is not a multiple of `size`) are not used.
    public var size: Int
    /// Blocks one host may hold on its address; a new flow that would need one more is refused.
    public var maxPerHost: Int

    public static let sizes = 16...16384

    public init(size: Int, maxPerHost: Int = 8) {
        self.size = size
        self.maxPerHost = maxPerHost
    }
}

/// A host's entry in the port block table: its blocks on one external address.
struct PortBlockHost: TableRow {
    /// The address index << 32 | the host.
    var key: UInt64
    var hash: UInt32
    /// The host's first block (then `PortBlockTable.nextBlock`), or -1.
    var first: Int32
    /// Blocks held; 0 marks a free row (a host is removed with its last block).
    var blocks: Int32

    static let empty = PortBlockHost(key: 0, hash: 0, first: -1, blocks: 0)
    var isFree: Bool { blocks == 0 }
}

/// Which host owns each block of each external address, the host's blocks (a list through
/// the blocks), and the mappings in each block. Allocated once; no allocation after `init`.
/// A host's entry is a row of an `IndexedTable` keyed by (address index, host). The table is
/// its buffers' one owner: not copyable, freed by its deinit.
struct PortBlockTable: ~Copyable {
    let size: Int
    let firstPort: Int
    let blocksPerAddress: Int
    private let addresses: Int
    private let owner: UnsafeMutablePointer<UInt32>
    /// Mappings in each owned block; -1 for a free block.
    private let mappingCounts: UnsafeMutablePointer<Int32>
    /// The next block of the same host, or -1.
    private let next: UnsafeMutablePointer<Int32>
    /// Free blocks, a bit each, `wordsPerAddress` words per address.
    private let freeWords: UnsafeMutablePointer<UInt64>
    private let wordsPerAddress: Int
    /// The hosts holding blocks: at most one per block.
    private var hosts: IndexedTable<PortBlockHost>
    /// Blocks owned, all addresses.
    private(set) var ownedCount = 0

    init(settings: PortBlockSettings, portRange: ClosedRange<UInt16>, addresses: Int, seed: UInt64 = 0) {
        size = settings.size
        firstPort = Int(portRange.lowerBound)
        blocksPerAddress = max(0, portRange.count / settings.size)
        self.addresses = addresses
        let blocks = max(1, addresses * blocksPerAddress)
        owner = .allocate(capacity: blocks)
        owner.initialize(repeating: 0, count: blocks)
        mappingCounts = .allocate(capacity: blocks)
        next = .allocate(capacity: blocks)
        wordsPerAddress = (blocksPerAddress + 63) / 64
        freeWords = .allocate(capacity: max(1, addresses * wordsPerAddress))
        hosts = IndexedTable(capacity: blocks, seed: seed)
        removeAll()
    }

    deinit {
        owner.deallocate()
        mappingCounts.deallocate()
        next.deallocate()
        freeWords.deallocate()
    }

    mutating func removeAll() {
        let blocks = addresses * blocksPerAddress
        mappingCounts.initialize(repeating: -1, count: max(1, blocks))
        next.initialize(repeating: -1, count: max(1, blocks))
        for a in 0..<addresses {
            for w in 0..<wordsPerAddress {
                let left = blocksPerAddress - w * 64
                freeWords[a * wordsPerAddress + w] = left >= 64 ? ~0 : (1 << UInt64(left)) - 1
            }
        }
        hosts.removeAll()
        ownedCount = 0
    }

    /// The block (global index) holding `port` on external address `address`, or -1 when the
    /// port is outside every block.
    @inline(__always)
    func block(of port: UInt16, address: Int) -> Int {
        let offset = Int(port) - firstPort
        guard offset >= 0, offset < blocksPerAddress * size else { return -1 }
        return address * blocksPerAddress + offset / size
    }

    /// The ports of a block.
    func ports(of block: Int) -> ClosedRange<Int> {
        let first = firstPort + (block % blocksPerAddress) * size
        return first...first + size - 1
    }

    func address(of block: Int) -> Int { block / blocksPerAddress }
    func owner(of block: Int) -> UInt32? { mappingCounts[block] < 0 ? nil : owner[block] }
    func mappings(in block: Int) -> Int { Int(max(0, mappingCounts[block])) }

    /// The first block of the host on `address`, or -1; then `nextBlock` until -1.
    func firstBlock(host: UInt32, address: Int) -> Int {
        let row = hostRow(host: host, address: address)
        return row < 0 ? -1 : Int(hosts[row].first)
    }

    func nextBlock(_ block: Int) -> Int { Int(next[block]) }

    func blockCount(host: UInt32, address: Int) -> Int {
        let row = hostRow(host: host, address: address)
        return row < 0 ? 0 : Int(hosts[row].blocks)
    }

    /// The first free block on `address`, in the order of a search from `hash` (choices are
    /// not predictable from outside), for which `fits` says yes; nil when none does. Nothing
    /// is taken: the caller `take`s the one returned.
    func freeBlock(address: Int, hash: UInt32, where fits: (Int) -> Bool) -> Int? {
        guard blocksPerAddress > 0 else { return nil }
        let words = freeWords + address * wordsPerAddress
        let startWord = Int(hash % UInt32(wordsPerAddress))
        let startBit = UInt64(hash >> 16 & 63)
        for i in 0...wordsPerAddress {
            let w = (startWord + i) % wordsPerAddress
            var bits = words[w]
            // The start word: from the hash's bit first, the rest of it on the last round.
            if i == 0 { bits &= ~0 << startBit } else if i == wordsPerAddress { bits &= ~(~0 << startBit) }
            while bits != 0 {
                let block = address * blocksPerAddress + w * 64 + bits.trailingZeroBitCount
                if fits(block) { return block }
                bits &= bits - 1
            }
        }
        return nil
    }

    /// A free block on `address` for `host`, searched from `hash`, taken; nil when every block is owned.
    mutating func allocate(host: UInt32, address: Int, hash: UInt32) -> Int? {
        guard let block = freeBlock(address: address, hash: hash, where: { _ in true }) else { return nil }
        take(block, host: host)
        return block
    }

    /// Gives `block` (free) to `host`.
    mutating func take(_ block: Int, host: UInt32) {
        let address = address(of: block), local = block % blocksPerAddress
        freeWords[address * wordsPerAddress + local / 64] &= ~(1 << UInt64(local % 64))
        owner[block] = host
        mappingCounts[block] = 0
        var row = hostRow(host: host, address: address)
        if row < 0 {
            let key = Self.key(host, address)
            row = hosts.insert(PortBlockHost(key: key, hash: flowHash(key, 0, seed: hosts.seed), first: -1, blocks: 0))
            precondition(row >= 0, "the host table has a row per block")
        }
        next[block] = hosts[row].first
        hosts.pointer(row).pointee.first = Int32(block)
        hosts.pointer(row).pointee.blocks += 1
        ownedCount += 1
    }

    @inline(__always)
    func addMapping(_ block: Int) { mappingCounts[block] += 1 }

    /// One mapping fewer in `block`; true when that was its last (the caller releases it).
    @inline(__always)
    func removeMapping(_ block: Int) -> Bool {
        mappingCounts[block] -= 1
        return mappingCounts[block] == 0
    }

    /// Frees an owned block.
    mutating func release(_ block: Int) {
        let host = owner[block], address = address(of: block), local = block % blocksPerAddress
        let row = hostRow(host: host, address: address)
        precondition(row >= 0, "an owned block's host is in the table")
        let entry = hosts.pointer(row)
        // Unlink: the host's list is at most its cap long.
        if Int(entry.pointee.first) == block {
            entry.pointee.first = next[block]
        } else {
            var b = Int(entry.pointee.first)
            while next[b] != Int32(block) { b = Int(next[b]) }
            next[b] = next[block]
        }
        next[block] = -1
        mappingCounts[block] = -1
        freeWords[address * wordsPerAddress + local / 64] |= 1 << UInt64(local % 64)
        ownedCount -= 1
        entry.pointee.blocks -= 1
        if entry.pointee.blocks == 0 { hosts.remove(row) }
    }

    private static func key(_ host: UInt32, _ address: Int) -> UInt64 { UInt64(address) << 32 | UInt64(host) }

    /// The host's row on `address`, or -1.
    private func hostRow(host: UInt32, address: Int) -> Int32 {
        let key = Self.key(host, address)
        return hosts.find(hash: flowHash(key, 0, seed: hosts.seed)) { $0.key == key }
    }
}

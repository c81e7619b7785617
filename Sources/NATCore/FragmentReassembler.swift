// IPv4 reassembly by verdict (KERNEL-FACTS 4 and 5): NFQUEUE hands fragments over one by
// one; the engine holds them, and when a datagram is whole it ACCEPTs one fragment carrying
// the reassembled datagram and DROPs the rest (the kernel refragments on output).
//
// Rules, after Linux's ip_fragment.c/inet_fragment.c and RFCs 791, 815, 1858 and 5722:
// - key (direction, source, destination, protocol, identification); any arrival order. The
//   direction (which hook and interface the fragment came by) is part of the key, so pieces
//   spoofed from the WAN with a LAN host's addresses never join or disturb that host's own
//   outbound datagram;
// - an exact duplicate is dropped alone; any other overlap discards the whole datagram;
// - the offset-0 fragment must hold the whole TCP/UDP/ICMP header, and a TCP fragment at
//   offset 8 discards the datagram (RFC 1858);
// - non-last fragments carry a multiple of 8 bytes; two different ends, data beyond the
//   end, or more than 65535 bytes discard the datagram;
// - a datagram not complete `timeout` after its first fragment is discarded;
// - caps on storage bytes, datagrams, datagrams per source and fragments per datagram. A
//   source (per direction) at its cap gives up its own oldest incomplete datagram for a new
//   one (`capPerSource`), and full storage or tables give up the globally oldest (`evicted`):
//   a flood of first fragments claiming a victim's address evicts only itself, and the
//   victim's real datagram, which completes within milliseconds, gets through.
//
// Memory: everything is allocated in `init` (see FragmentReassembler-Limits.swift): a pool
// of 256-byte blocks and fragment records carved out of `maxBytes`, a datagram table of
// `maxDatagrams` rows with their hash index and header slots, a per-source count table, and
// one 64 KiB output buffer. Offering a fragment never allocates.

public final class FragmentReassembler {
    public let limits: FragmentLimits
    private var stats = FragmentCounters()
    private var blocks: FragmentBlockPool
    private var records: RowStore<FragmentRecord>
    private var datagrams: IndexedTable<DatagramRow>
    /// `maxDatagrams` slots of 60 bytes: the IP header of each datagram's offset-0 fragment.
    private let headers: UnsafeMutableRawPointer
    private var sources: IndexedTable<SourceRow>
    /// The reassembled datagram handed out with `.complete`.
    private let output: UnsafeMutableRawPointer
    private let seed: UInt64
    /// Datagrams in creation order, which is deadline order (one fixed timeout).
    private var oldest: Int32 = -1
    private var newest: Int32 = -1

    static let maxHeaderLength = 60
    static let outputCapacity = 65536

    public init(limits: FragmentLimits = FragmentLimits(), hashSeed: UInt64) {
        precondition(limits.maxDatagrams > 0 && limits.maxDatagrams < Int(Int32.max) / 4)
        precondition(limits.maxDatagramsPerSource > 0)
        precondition(limits.maxFragmentsPerDatagram > 0)
        let blockCount = limits.blockCount
        precondition(blockCount > 0 && blockCount < Int(Int32.max) / 4, "maxBytes too small or too large")
        self.limits = limits
        seed = hashSeed
        blocks = FragmentBlockPool(capacity: blockCount)
        precondition(limits.maxFragmentsHeld > 0)
        let recordCount = min(blockCount, limits.maxDatagrams * min(limits.maxFragmentsPerDatagram, 8192), limits.maxFragmentsHeld)
        records = RowStore(capacity: recordCount, empty: .empty)
        datagrams = IndexedTable(capacity: limits.maxDatagrams)
        headers = .allocate(byteCount: limits.maxDatagrams * Self.maxHeaderLength, alignment: 8)
        headers.initializeMemory(as: UInt8.self, repeating: 0, count: limits.maxDatagrams * Self.maxHeaderLength)
        sources = IndexedTable(capacity: limits.maxDatagrams)
        output = .allocate(byteCount: Self.outputCapacity, alignment: 16)
        output.initializeMemory(as: UInt8.self, repeating: 0, count: Self.outputCapacity)
    }

    deinit {
        headers.deallocate()
        output.deallocate()
    }

    // MARK: state

    public var counters: FragmentCounters {
        var c = stats
        c.fragmentsHeld = records.count
        c.bytesHeld = bytesHeld
        c.datagramsInProgress = datagrams.count
        return c
    }

    /// Storage in use, counted against `limits.maxBytes`: whole blocks plus fragment records.
    public var bytesHeld: Int {
        blocks.inUse * FragmentLimits.blockCost + records.count * FragmentLimits.recordCost
    }

    public var datagramsInProgress: Int { datagrams.count }

    /// Bytes allocated at init, all structures included (fixed for the reassembler's life).
    public var allocatedBytes: Int {
        blocks.capacity * FragmentLimits.blockCost
            + records.capacity * FragmentLimits.recordCost
            + datagrams.capacity * (MemoryLayout<DatagramRow>.stride + MemoryLayout<Int32>.stride + Self.maxHeaderLength)
            + datagrams.indexBytes
            + sources.capacity * (MemoryLayout<SourceRow>.stride + MemoryLayout<Int32>.stride)
            + sources.indexBytes
            + Self.outputCapacity
    }

    /// When the oldest datagram in reassembly times out, or nil if none is held.
    public var nextDeadline: NATTime? {
        oldest >= 0 ? NATTime(nanoseconds: datagrams.rows[Int(oldest)].deadline) : nil
    }

    // MARK: offer

    /// True for what `offer` takes: an IPv4 packet with MF set or a non-zero offset. Only the
    /// version and the flags are read; a malformed packet is left to the translator to count.
    @inlinable
    public static func isFragment(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard packet.count >= 20, let base = packet.baseAddress else { return false }
        let header = IPv4Header(unchecked: UnsafeMutableRawPointer(mutating: base))
        return header.version == 4 && header.isFragment
    }

    /// Offers one IPv4 fragment (the caller has checked `isFragment`).
    /// `token` is the caller's handle for the packet (the NFQUEUE packet id). Tokens the caller
    /// must DROP now are passed to `dropToken` before this returns; see `FragmentOutcome`.
    /// Also discards up to two timed-out datagrams, so a caller that rarely calls `expire`
    /// still frees their storage.
    public func offer(
        _ fragment: UnsafeRawBufferPointer,
        token: UInt32,
        direction: PacketDirection,
        now: NATTime,
        dropToken: (UInt32) -> Void
    ) -> FragmentOutcome {
        stats[.fragmentsOffered] &+= 1
        expire(now: now, budget: 2, dropToken)

        guard let base = fragment.baseAddress,
              case .success(let ip) = IPv4Packet.parse(UnsafeMutableRawPointer(mutating: base), count: fragment.count)
        else { return refuse(.malformed) }
        let header = ip.header
        let offset = header.fragmentOffset
        let more = header.moreFragments
        // Not a fragment: a caller error; it must not disturb a datagram in reassembly.
        guard more || offset != 0 else { return refuse(.malformed) }
        let length = ip.transportLength
        let end = offset + length
        let payload = UnsafeRawPointer(ip.transport)
        let key = DatagramKey(
            source: header.source.value, destination: header.destination.value,
            identification: header.identification, protocolNumber: header.protocolNumber, direction: Self.code(direction))
        let hash = flowHash(
            UInt64(key.source) << 32 | UInt64(key.destination),
            UInt64(key.direction) << 24 | UInt64(key.identification) << 8 | UInt64(key.protocolNumber), seed: seed)
        var row = findDatagram(key, hash: hash)
        if row >= 0, datagrams.rows[Int(row)].deadline <= now.nanoseconds {
            discard(row, reason: .timeout, dropToken)
            row = -1
        }

        // Checks of the fragment alone. Failing one also discards the datagram.
        var problem: FragmentDropReason?
        if length == 0 || (more && length & 7 != 0) {
            problem = .malformed
        } else if key.protocolNumber == IPProtocolNumber.tcp && offset == 8 {
            problem = .tcpOffsetEight
        } else if offset == 0, let reason = Self.checkFirstFragment(protocolNumber: key.protocolNumber, payload: payload, length: length) {
            problem = reason
        } else {
            let knownHeader = row >= 0 ? Int(datagrams.rows[Int(row)].headerLength) : 0
            let headerLength = offset == 0 ? header.headerLength : max(knownHeader, 20)
            let highest = row >= 0 ? max(end, Int(datagrams.rows[Int(row)].highestEnd)) : end
            if highest + headerLength > 65535 { problem = .oversize }
        }
        if let problem {
            if row >= 0 { discard(row, reason: nil, dropToken) }
            return refuse(problem)
        }

        let blocksNeeded = FragmentBlockPool.blocksFor(length)
        if row < 0 {
            // A new datagram: the caps decide, and a refused fragment leaves no state behind.
            var sourceRow = findSource(key.source, direction: key.direction)
            if sourceRow >= 0, Int(sources.rows[Int(sourceRow)].count) >= limits.maxDatagramsPerSource {
                // The source gives up its own oldest incomplete datagram: refusing the new one
                // would let 64 spoofed first fragments shut the real owner of an address out.
                discard(sources.rows[Int(sourceRow)].oldest, reason: .capPerSource, dropToken)
                sourceRow = findSource(key.source, direction: key.direction)
            }
            // Full: make room by evicting the oldest incomplete datagrams (a bounded few) rather
            // than refusing, so a slow flood of never-completed datagrams cannot keep every new
            // datagram out until the timeout; a real datagram completes long before it is oldest.
            var evictions = 0
            while evictions < 8, oldest >= 0,
                  datagrams.freeCount == 0 || records.freeCount == 0 || blocksNeeded > blocks.freeCount {
                discard(oldest, reason: .evicted, dropToken)
                evictions += 1
            }
            if evictions > 0 { sourceRow = findSource(key.source, direction: key.direction) }
            if datagrams.freeCount == 0 { return refuse(.capDatagrams) }
            if records.freeCount == 0 { return refuse(.capFragmentsHeld) }
            if blocksNeeded > blocks.freeCount { return refuse(.capBytes) }
            row = createDatagram(key, hash: hash, sourceRow: sourceRow, now: now)
        }

        let d = datagrams.rows + Int(row)
        // Ends: at most one, and nothing beyond it.
        if !more {
            if d.pointee.payloadLength >= 0 ? end != Int(d.pointee.payloadLength) : end < Int(d.pointee.highestEnd) {
                discard(row, reason: nil, dropToken)
                return refuse(.inconsistentEnd)
            }
        } else if d.pointee.payloadLength >= 0, end > Int(d.pointee.payloadLength) {
            discard(row, reason: nil, dropToken)
            return refuse(.inconsistentEnd)
        }

        // Place it in the offset-sorted list: after `previous`, before `following`.
        var previous: Int32 = -1
        var following: Int32 = -1
        let tail = d.pointee.lastFragment
        if tail < 0 || Int(records.rows[Int(tail)].offset + records.rows[Int(tail)].length) <= offset {
            previous = tail // in order: the common case
        } else {
            var current = d.pointee.firstFragment
            while current >= 0 {
                let r = records.rows[Int(current)]
                if Int(r.offset + r.length) > offset { break }
                previous = current
                current = r.next
            }
            // `current` is the first fragment ending after `offset`.
            let r = records.rows[Int(current)]
            if Int(r.offset) < end {
                if Int(r.offset) == offset, Int(r.length) == length, r.moreFragments == more,
                   blocks.equals(r.firstBlock, payload, count: length) {
                    return refuse(.duplicate)
                }
                discard(row, reason: nil, dropToken)
                return refuse(.overlap)
            }
            following = current
        }

        if Int(d.pointee.fragmentCount) >= limits.maxFragmentsPerDatagram {
            discard(row, reason: nil, dropToken)
            return refuse(.tooManyFragments)
        }
        // No room for this fragment: evict older datagrams first, then give up on this one.
        var evictions = 0
        while evictions < 8, oldest >= 0, oldest != row, blocksNeeded > blocks.freeCount || records.freeCount == 0 {
            discard(oldest, reason: .evicted, dropToken)
            evictions += 1
        }
        guard blocksNeeded <= blocks.freeCount, records.freeCount > 0 else {
            // The datagram cannot complete without this fragment: free what it holds.
            discard(row, reason: nil, dropToken)
            return refuse(records.freeCount == 0 ? .capFragmentsHeld : .capBytes)
        }

        // Hold it.
        let chain = blocks.take(blocksNeeded)
        blocks.write(chain, from: payload, count: length)
        let record = records.take()
        records.rows[Int(record)] = FragmentRecord(
            offset: Int32(offset), length: Int32(length), firstBlock: chain, next: following,
            token: token, moreFragments: more)
        if previous >= 0 { records.rows[Int(previous)].next = record } else { d.pointee.firstFragment = record }
        if following < 0 { d.pointee.lastFragment = record }
        d.pointee.fragmentCount += 1
        d.pointee.receivedBytes += Int32(length)
        d.pointee.highestEnd = max(d.pointee.highestEnd, Int32(end))
        if !more { d.pointee.payloadLength = Int32(end) }
        if offset == 0 {
            let headerLength = header.headerLength
            headerSlot(row).copyMemory(from: base, byteCount: headerLength)
            d.pointee.headerLength = UInt8(headerLength)
        }

        // Disjoint pieces inside [0, end) whose lengths add up to end cover it all.
        if d.pointee.headerLength > 0, d.pointee.payloadLength >= 0, d.pointee.receivedBytes == d.pointee.payloadLength {
            return assemble(row, dropToken)
        }
        return .held
    }

    // MARK: expiry

    /// Discards up to `budget` timed-out datagrams, oldest first, passing each held token to
    /// `dropToken`. Returns how many datagrams were discarded.
    @discardableResult
    public func expire(now: NATTime, budget: Int = 64, _ dropToken: (UInt32) -> Void) -> Int {
        var discarded = 0
        while discarded < budget, oldest >= 0, datagrams.rows[Int(oldest)].deadline <= now.nanoseconds {
            discard(oldest, reason: .timeout, dropToken)
            discarded += 1
        }
        return discarded
    }

    /// Discards every datagram in reassembly (shutdown, reconfiguration), passing each held
    /// token to `dropToken`. Not counted as drops.
    public func removeAll(_ dropToken: (UInt32) -> Void) {
        while oldest >= 0 { discard(oldest, reason: nil, dropToken, counted: false) }
    }

    // MARK: internals

    @inline(__always)
    private func refuse(_ reason: FragmentDropReason) -> FragmentOutcome {
        stats[reason] &+= 1
        return .drop(reason)
    }

    @inline(__always)
    private func headerSlot(_ row: Int32) -> UnsafeMutableRawPointer { headers + Int(row) * Self.maxHeaderLength }

    /// nil if the offset-0 fragment holds the whole transport header, else why not.
    private static func checkFirstFragment(protocolNumber: UInt8, payload: UnsafeRawPointer, length: Int) -> FragmentDropReason? {
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            guard length >= TCPHeader.minimumLength else { return .tooShortFirstFragment }
            let dataOffset = Int(payload.load(fromByteOffset: 12, as: UInt8.self) >> 4) * 4
            guard dataOffset >= TCPHeader.minimumLength else { return .malformed }
            return length >= dataOffset ? nil : .tooShortFirstFragment
        case IPProtocolNumber.udp:
            return length >= UDPHeader.length ? nil : .tooShortFirstFragment
        case IPProtocolNumber.icmp:
            return length >= ICMPHeader.length ? nil : .tooShortFirstFragment
        default:
            return nil
        }
    }

    private func findDatagram(_ key: DatagramKey, hash: UInt32) -> Int32 {
        datagrams.find(hash: hash) { d in
            d.source == key.source && d.destination == key.destination
                && d.identification == key.identification && d.protocolNumber == key.protocolNumber && d.direction == key.direction
        }
    }

    @inline(__always)
    static func code(_ direction: PacketDirection) -> UInt8 {
        switch direction {
        case .outbound: 0
        case .inbound: 1
        case .hairpin: 2
        }
    }

    private func sourceHash(_ address: UInt32, direction: UInt8) -> UInt32 {
        flowHash(UInt64(direction) << 32 | UInt64(address), 0x5352_4346, seed: seed)
    }

    private func findSource(_ address: UInt32, direction: UInt8) -> Int32 {
        sources.find(hash: sourceHash(address, direction: direction)) { $0.address == address && $0.direction == direction }
    }

    /// The caller has checked there is a free datagram row (and so a free source row).
    private func createDatagram(_ key: DatagramKey, hash: UInt32, sourceRow found: Int32, now: NATTime) -> Int32 {
        var sourceRow = found
        if sourceRow < 0 {
            let h = sourceHash(key.source, direction: key.direction)
            sourceRow = sources.insert(SourceRow(address: key.source, hash: h, count: 0, oldest: -1, newest: -1, direction: key.direction))
        }
        let s = sources.rows + Int(sourceRow)
        s.pointee.count += 1

        var d = DatagramRow.empty
        d.deadline = (now + limits.timeout).nanoseconds
        d.source = key.source
        d.destination = key.destination
        d.identification = key.identification
        d.protocolNumber = key.protocolNumber
        d.direction = key.direction
        d.hash = hash
        d.sourceRow = sourceRow
        d.older = newest
        d.sourceOlder = s.pointee.newest
        let row = datagrams.insert(d)
        if newest >= 0 { datagrams.rows[Int(newest)].newer = row } else { oldest = row }
        newest = row
        if s.pointee.newest >= 0 { datagrams.rows[Int(s.pointee.newest)].sourceNewer = row } else { s.pointee.oldest = row }
        s.pointee.newest = row
        return row
    }

    /// Frees a datagram and everything it holds. Held tokens go to `dropToken`.
    /// `reason` is counted (timeouts); other reasons are counted by `refuse`.
    private func discard(_ row: Int32, reason: FragmentDropReason?, _ dropToken: (UInt32) -> Void, counted: Bool = true) {
        if let reason { stats[reason] &+= 1 }
        if counted { stats[.datagramsDiscarded] &+= 1 }
        var current = datagrams.rows[Int(row)].firstFragment
        while current >= 0 {
            dropToken(records.rows[Int(current)].token)
            if counted { stats[.heldFragmentsDropped] &+= 1 }
            current = records.rows[Int(current)].next
        }
        free(row)
    }

    /// Builds the whole datagram in `output`, reports every token but the offset-0
    /// fragment's, and frees the datagram.
    private func assemble(_ row: Int32, _ dropToken: (UInt32) -> Void) -> FragmentOutcome {
        let d = datagrams.rows[Int(row)]
        let headerLength = Int(d.headerLength)
        let total = headerLength + Int(d.payloadLength)
        output.copyMemory(from: headerSlot(row), byteCount: headerLength)
        let header = IPv4Header(unchecked: output)
        output.storeBE16(UInt16(total), at: 2)
        // Keep DF (and the reserved bit); clear MF and the offset.
        output.storeBE16(header.flagsAndFragmentOffset & 0xc000, at: 6)
        header.updateHeaderChecksum()

        var acceptToken: UInt32 = 0
        var current = d.firstFragment
        while current >= 0 {
            let r = records.rows[Int(current)]
            blocks.read(r.firstBlock, into: output + headerLength + Int(r.offset), count: Int(r.length))
            if r.offset == 0 { acceptToken = r.token } else { dropToken(r.token) }
            current = r.next
        }
        stats[.datagramsCompleted] &+= 1
        free(row)
        return .complete(datagram: UnsafeMutableRawBufferPointer(start: output, count: total), acceptToken: acceptToken)
    }

    private func free(_ row: Int32) {
        let d = datagrams.rows[Int(row)]
        var current = d.firstFragment
        while current >= 0 {
            let r = records.rows[Int(current)]
            blocks.give(r.firstBlock, count: FragmentBlockPool.blocksFor(Int(r.length)))
            records.give(current, empty: .empty)
            current = r.next
        }
        if d.older >= 0 { datagrams.rows[Int(d.older)].newer = d.newer } else { oldest = d.newer }
        if d.newer >= 0 { datagrams.rows[Int(d.newer)].older = d.older } else { newest = d.older }
        let s = sources.rows + Int(d.sourceRow)
        if d.sourceOlder >= 0 { datagrams.rows[Int(d.sourceOlder)].sourceNewer = d.sourceNewer } else { s.pointee.oldest = d.sourceNewer }
        if d.sourceNewer >= 0 { datagrams.rows[Int(d.sourceNewer)].sourceOlder = d.sourceOlder } else { s.pointee.newest = d.sourceOlder }
        s.pointee.count -= 1
        if s.pointee.count == 0 {
            sources.remove(d.sourceRow)
        }
        datagrams.remove(row)
    }
}

struct DatagramKey {
    var source: UInt32
    var destination: UInt32
    var identification: UInt16
    var protocolNumber: UInt8
    /// `FragmentReassembler.code(direction)`.
    var direction: UInt8
}

/// One datagram in reassembly.
struct DatagramRow: BitwiseCopyable {
    var deadline: UInt64
    var source: UInt32
    var destination: UInt32
    var hash: UInt32
    var identification: UInt16
    var protocolNumber: UInt8
    /// Header length of the offset-0 fragment; 0 until it arrives.
    var headerLength: UInt8
    var direction: UInt8
    /// Fragment list sorted by offset.
    var firstFragment: Int32
    var lastFragment: Int32
    var fragmentCount: Int32
    /// Sum of the held fragments' lengths (they never overlap).
    var receivedBytes: Int32
    /// Payload length once the last fragment (MF clear) is in; -1 before.
    var payloadLength: Int32
    var highestEnd: Int32
    var sourceRow: Int32
    /// Creation-order list, of all datagrams and of this source's.
    var older: Int32
    var newer: Int32
    var sourceOlder: Int32
    var sourceNewer: Int32

    static let empty = DatagramRow(
        deadline: 0, source: 0, destination: 0, hash: 0, identification: 0, protocolNumber: 0, headerLength: 0, direction: 0,
        firstFragment: -1, lastFragment: -1, fragmentCount: 0, receivedBytes: 0, payloadLength: -1,
        highestEnd: 0, sourceRow: -1, older: -1, newer: -1, sourceOlder: -1, sourceNewer: -1)
}

extension DatagramRow: TableRow {
    var isFree: Bool { sourceRow < 0 }
}

/// Datagrams in reassembly per source address and direction, oldest and newest of them.
struct SourceRow: BitwiseCopyable {
    var address: UInt32
    var hash: UInt32
    var count: Int32
    var oldest: Int32
    var newest: Int32
    var direction: UInt8

    static let empty = SourceRow(address: 0, hash: 0, count: 0, oldest: -1, newest: -1, direction: 0)
}

extension SourceRow: TableRow {
    /// A live row counts at least one datagram.
    var isFree: Bool { count == 0 }
}

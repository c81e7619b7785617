import CounterSet

// What the fragment reassembler tells its caller about one offered fragment, and the
// counters that explain every fragment it refused.

/// The answer to `FragmentReassembler.offer`.
///
/// Tokens reported through the `dropToken` closure of the same call must be given DROP
/// verdicts whatever the outcome.
public enum FragmentOutcome {
    /// The fragment is held: keep its token pending, give no verdict yet.
    case held
    /// The datagram is whole. Give `acceptToken` (the token of its offset-0 fragment, which
    /// may or may not be the fragment just offered) an ACCEPT verdict carrying `datagram` as
    /// its payload; every other token of the datagram, the offered one included when it is
    /// not `acceptToken`, was reported through `dropToken`. `datagram` stays valid (and may
    /// be rewritten in place) until the next call into the reassembler.
    case complete(datagram: UnsafeMutableRawBufferPointer, acceptToken: UInt32)
    /// Drop the offered fragment. If its datagram was thrown away too, the tokens held for
    /// it were reported through `dropToken` (the offered token is never among them).
    case drop(FragmentDropReason)
}

/// Why a fragment (and, for most reasons, its whole datagram) was refused.
public enum FragmentDropReason: Int, CounterName, CustomStringConvertible {
    /// Fragment bytes overlap bytes already held (not an exact duplicate): the whole datagram
    /// is discarded (RFC 5722's rule, which Linux applies to IPv4 too).
    case overlap
    /// An exact copy of a held fragment (same offset, length, MF flag and bytes): only the
    /// copy is dropped, the datagram carries on. Counted, not an error.
    case duplicate
    /// The offset-0 fragment does not hold the whole transport header (RFC 1858 tiny fragment).
    case tooShortFirstFragment
    /// A TCP fragment at offset 8 (RFC 1858's overlapping-fragment attack on TCP flags).
    case tcpOffsetEight
    /// The datagram would exceed 65535 bytes.
    case oversize
    /// Two different ends (conflicting last fragments), or data beyond the end.
    case inconsistentEnd
    /// More fragments than `FragmentLimits.maxFragmentsPerDatagram`.
    case tooManyFragments
    /// Not a readable IPv4 fragment: bad header, empty fragment, a non-last fragment whose
    /// length is not a multiple of 8, or a packet that is not a fragment at all.
    case malformed
    /// The datagram was not complete within `FragmentLimits.timeout` (counted per datagram).
    case timeout
    /// No room in the fragment storage (`FragmentLimits.maxBytes`).
    case capBytes
    /// Discarded incomplete, oldest first, to make room when storage, the datagram table or the
    /// fragment cap was full (counted per datagram).
    case evicted
    /// Already `FragmentLimits.maxFragmentsHeld` fragments held.
    case capFragmentsHeld
    /// Already `FragmentLimits.maxDatagrams` datagrams in reassembly.
    case capDatagrams
    /// A new datagram found its source (in its direction) with `FragmentLimits.maxDatagramsPerSource`
    /// datagrams in reassembly: the source's own oldest incomplete one was discarded to make
    /// room (counted per datagram discarded; the new one is held, never refused).
    case capPerSource

    public var description: String {
        switch self {
        case .overlap: "overlap"
        case .duplicate: "duplicate"
        case .tooShortFirstFragment: "too_short_first_fragment"
        case .tcpOffsetEight: "tcp_offset_eight"
        case .oversize: "oversize"
        case .inconsistentEnd: "inconsistent_end"
        case .tooManyFragments: "too_many_fragments"
        case .malformed: "malformed"
        case .timeout: "timeout"
        case .capBytes: "cap_bytes"
        case .evicted: "evicted"
        case .capFragmentsHeld: "cap_fragments_held"
        case .capDatagrams: "cap_datagrams"
        case .capPerSource: "cap_per_source"
        }
    }
}

/// The reassembler's counters other than drops.
public enum FragmentCounter: Int, CounterName {
    case fragmentsOffered
    case datagramsCompleted
    /// Datagrams thrown away with fragments still held (timeouts, overlaps, caps, …).
    case datagramsDiscarded
    /// Held tokens reported for dropping because their datagram was thrown away (not
    /// counting the dropped tokens of completed datagrams).
    case heldFragmentsDropped
}

/// What the reassembler did, read as `counters[.fragmentsOffered]`, `counters[.overlap]`. Drop
/// counts are events: offered fragments refused for that reason, except `timeout`, which
/// counts datagrams that timed out.
public struct FragmentCounters: Sendable {
    public var events = CounterSet<FragmentCounter>()
    public var drops = CounterSet<FragmentDropReason>()

    /// Live values at the time the counters were read.
    public var fragmentsHeld = 0
    public var bytesHeld = 0
    public var datagramsInProgress = 0

    public init() {}

    public subscript(counter: FragmentCounter) -> UInt64 {
        get { events[counter] }
        set { events[counter] = newValue }
    }

    public subscript(reason: FragmentDropReason) -> UInt64 {
        get { drops[reason] }
        set { drops[reason] = newValue }
    }

    public func drops(_ reason: FragmentDropReason) -> UInt64 { drops[reason] }

    /// All drop events except duplicates (which are not errors).
    public var totalDrops: UInt64 { drops.total &- drops[.duplicate] }

    /// Adds the counts; the live values add up too (each worker reassembles on its own).
    public mutating func add(_ other: FragmentCounters) {
        events.add(other.events)
        drops.add(other.drops)
        fragmentsHeld += other.fragmentsHeld
        bytesHeld += other.bytesHeld
        datagramsInProgress += other.datagramsInProgress
    }
}

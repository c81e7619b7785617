// `--max-new-flows-per-host RATE/s`: how fast one internal host may open new flows (sessions it
// starts: outbound, and hairpinned from its side), on top of the per-host cap on live ones. A
// token bucket of `burst` tokens refilled at `perSecond`, kept as GCRA (one theoretical
// arrival time per host in HostTable, no timer): a host may open `burst` flows at once, then
// one every 1/perSecond s. Established flows are never asked.
//
// The burst is one second's worth (burst = perSecond): a browser opening a page's dozen
// connections at once is not slowed at any sensible rate, and a flood is held to the rate
// after at most one second. Time comes with every packet (NATTime); nothing here reads a clock.

public struct NewFlowRate: Sendable, Equatable, CustomStringConvertible {
    public static let maximumPerSecond: UInt32 = 1_000_000

    public let perSecond: UInt32
    public let burst: UInt32
    /// Nanoseconds one flow costs (1/perSecond s).
    public let interval: UInt64
    /// How far ahead of now a host's arrival time may run: (burst - 1) intervals.
    public let tolerance: UInt64

    public init?(perSecond: UInt32) {
        guard (1...Self.maximumPerSecond).contains(perSecond) else { return nil }
        self.perSecond = perSecond
        burst = perSecond
        interval = 1_000_000_000 / UInt64(perSecond)
        tolerance = UInt64(burst - 1) * interval
    }

    /// Parses "RATE/s" with RATE a whole number from 1 to 1000000 (no sign, no spaces).
    public init?(_ text: some StringProtocol) {
        guard text.hasSuffix("/s") else { return nil }
        let digits = text.utf8.dropLast(2)
        guard !digits.isEmpty, digits.count <= 7, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let value = digits.reduce(UInt32(0)) { $0 * 10 + UInt32($1 - 48) }
        self.init(perSecond: value)
    }

    public var description: String { "\(perSecond)/s" }
}

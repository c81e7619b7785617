// Time as the core sees it: a monotonic instant handed in by the caller. The core never
// reads a clock, so tests and benchmarks drive it with any time they like.

public struct NATTime: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    @inlinable
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    @inlinable
    public static func seconds(_ s: UInt64) -> NATTime { NATTime(nanoseconds: s &* 1_000_000_000) }

    @inlinable
    public static func < (lhs: NATTime, rhs: NATTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    @inlinable
    public static func + (lhs: NATTime, rhs: NATDuration) -> NATTime {
        NATTime(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }

    @inlinable
    public func duration(since earlier: NATTime) -> NATDuration {
        NATDuration(nanoseconds: nanoseconds >= earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0)
    }
}

public struct NATDuration: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    @inlinable
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    @inlinable
    public static func seconds(_ s: UInt64) -> NATDuration { NATDuration(nanoseconds: s &* 1_000_000_000) }

    public var wholeSeconds: UInt64 { nanoseconds / 1_000_000_000 }

    @inlinable
    public static func < (lhs: NATDuration, rhs: NATDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}

// The one way masqd keeps counters: an enum names them (its raw values 0, 1, 2, … index a
// fixed inline array, its description is the name `masqd stats` shows where a family is
// rendered by name), one `add` sums two sets. No allocation, no indirection: a set is 64
// words held in its owner, so counting on the packet path is one add at a fixed offset.

/// The names of one set of counters: an `Int` enum with raw values below `CounterSet.capacity`
/// (the default 0, 1, 2, … in case order).
public protocol CounterName: RawRepresentable, CaseIterable, Sendable where RawValue == Int {}

@frozen
public struct CounterSet<Name: CounterName>: Sendable, Equatable {
    /// Counters a set can hold: room for the largest enum (NATCounter) with some to spare.
    public static var capacity: Int { 64 }

    @usableFromInline
    var values = InlineArray<64, UInt64>(repeating: 0)

    @inlinable
    public init() {
        assert(Name.allCases.allSatisfy { $0.rawValue >= 0 && $0.rawValue < Self.capacity },
               "\(Name.self) has a raw value outside 0..<\(Self.capacity)")
    }

    @inlinable
    public subscript(name: Name) -> UInt64 {
        get { values[name.rawValue] }
        set { values[name.rawValue] = newValue }
    }

    /// Adds one (wrapping, as every counter does).
    @inlinable
    public mutating func count(_ name: Name) {
        values[name.rawValue] &+= 1
    }

    /// Adds every counter of `other` to this set's.
    @inlinable
    public mutating func add(_ other: Self) {
        for index in 0..<Self.capacity { values[index] &+= other.values[index] }
    }

    /// The sum of all counters.
    @inlinable
    public var total: UInt64 {
        var sum: UInt64 = 0
        for index in 0..<Self.capacity { sum &+= values[index] }
        return sum
    }

    @inlinable
    public static func == (lhs: Self, rhs: Self) -> Bool {
        for index in 0..<capacity where lhs.values[index] != rhs.values[index] { return false }
        return true
    }
}

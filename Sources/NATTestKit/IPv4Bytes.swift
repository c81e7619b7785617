import NATCore

/// A test-side IPv4 address as four bytes (kept apart from NATCore's `IPv4Address` on purpose:
/// expected packets are built without the code under test).
public struct IPv4Bytes: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = [a, b, c, d] }
    public init(bytes: [UInt8]) { precondition(bytes.count == 4); self.bytes = bytes }
    /// Dotted decimal, "192.0.2.10".
    public var description: String { bytes.map(String.init).joined(separator: ".") }
    /// The same address as NATCore's type, for configurations.
    public var address: IPv4Address { IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3]) }
}

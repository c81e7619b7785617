// An IPv4 address as a host-order integer, with dotted-quad parsing and printing.

public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    @inlinable
    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses strict dotted-quad notation ("192.0.2.1"); nil for anything else.
    public init?(_ text: some StringProtocol) {
        var parts: [UInt32] = []
        var current: UInt32 = 0
        var digits = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return nil }
                parts.append(current)
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                // Leading zeros are refused: "010" is octal to inet_aton and ambiguous to people.
                if digits == 1, current == 0 { return nil }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 3, current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        parts.append(current)
        guard parts.count == 4 else { return nil }
        value = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 prefix ("192.0.2.0/24"). Host bits must be zero so a typo is not silently widened.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let length: Int

    public init?(network: IPv4Address, length: Int) {
        guard (0...32).contains(length) else { return nil }
        let mask = IPv4Prefix.mask(length)
        guard network.value & ~mask == 0 else { return nil }
        self.network = network
        self.length = length
    }

    /// Parses "A.B.C.D/N" or a bare address (a /32).
    public init?(_ text: some StringProtocol) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2, let address = IPv4Address(pieces[0]) else { return nil }
        var length = 32
        if pieces.count == 2 {
            let lengthText = pieces[1]
            guard !lengthText.isEmpty, lengthText.count <= 2, lengthText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let parsed = Int(lengthText) else { return nil }
            length = parsed
        }
        self.init(network: address, length: length)
    }

    @inlinable
    public static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    }

    @inlinable
    public func contains(_ address: IPv4Address) -> Bool {
        address.value & IPv4Prefix.mask(length) == network.value
    }

    public func overlaps(_ other: IPv4Prefix) -> Bool {
        let shorter = min(length, other.length)
        let mask = IPv4Prefix.mask(shorter)
        return network.value & mask == other.network.value & mask
    }

    public var description: String { "\(network)/\(length)" }
}

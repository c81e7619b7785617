// An in-place view of an IPv4 header. Construct it only through `IPv4Packet.parse`, which
// checks the lengths that make every accessor here safe.

public struct IPv4Header {
    public let bytes: UnsafeMutableRawPointer

    @inlinable
    public init(unchecked bytes: UnsafeMutableRawPointer) { self.bytes = bytes }

    @inlinable public var version: UInt8 { bytes.loadBE8(at: 0) >> 4 }
    @inlinable public var headerLength: Int { Int(bytes.loadBE8(at: 0) & 0x0f) &* 4 }
    @inlinable public var totalLength: Int { Int(bytes.loadBE16(at: 2)) }
    @inlinable public var identification: UInt16 { bytes.loadBE16(at: 4) }
    @inlinable public var flagsAndFragmentOffset: UInt16 { bytes.loadBE16(at: 6) }
    @inlinable public var dontFragment: Bool { flagsAndFragmentOffset & 0x4000 != 0 }
    @inlinable public var moreFragments: Bool { flagsAndFragmentOffset & 0x2000 != 0 }
    /// Fragment offset in bytes.
    @inlinable public var fragmentOffset: Int { Int(flagsAndFragmentOffset & 0x1fff) &* 8 }
    @inlinable public var isFragment: Bool { flagsAndFragmentOffset & 0x3fff != 0 }
    @inlinable public var timeToLive: UInt8 { bytes.loadBE8(at: 8) }
    @inlinable public var protocolNumber: UInt8 { bytes.loadBE8(at: 9) }
    @inlinable public var headerChecksum: UInt16 { bytes.loadBE16(at: 10) }

    @inlinable
    public var source: IPv4Address {
        get { IPv4Address(bytes.loadBE32(at: 12)) }
        nonmutating set { bytes.storeBE32(newValue.value, at: 12) }
    }

    @inlinable
    public var destination: IPv4Address {
        get { IPv4Address(bytes.loadBE32(at: 16)) }
        nonmutating set { bytes.storeBE32(newValue.value, at: 16) }
    }

    /// Rewrites the source address and updates the header checksum incrementally.
    @inlinable
    public func rewriteSource(_ address: IPv4Address) {
        let old = source.value
        source = address
        bytes.storeBE16(InternetChecksum.adjust(headerChecksum, oldAddress: old, newAddress: address.value), at: 10)
    }

    /// Rewrites the destination address and updates the header checksum incrementally.
    @inlinable
    public func rewriteDestination(_ address: IPv4Address) {
        let old = destination.value
        destination = address
        bytes.storeBE16(InternetChecksum.adjust(headerChecksum, oldAddress: old, newAddress: address.value), at: 10)
    }

    /// Recomputes the header checksum from scratch.
    @inlinable
    public func updateHeaderChecksum() {
        bytes.storeBE16(0, at: 10)
        bytes.storeBE16(InternetChecksum.checksum(UnsafeRawPointer(bytes), count: headerLength), at: 10)
    }

    /// True if the stored header checksum verifies.
    @inlinable
    public var headerChecksumIsValid: Bool {
        InternetChecksum.sum(UnsafeRawPointer(bytes), count: headerLength) == 0xffff
    }
}

/// Why a packet could not be read as IPv4. Each has its own drop counter.
public enum IPv4ParseError: Error, Equatable, Sendable {
    case tooShort          // fewer than 20 bytes
    case notVersion4
    case badHeaderLength   // IHL < 5 or beyond the buffer
    case badTotalLength    // total length smaller than the header or larger than the bytes we have
}

/// A validated IPv4 packet: the header plus the transport bytes up to the total length
/// (link-layer padding beyond the total length is ignored).
public struct IPv4Packet {
    public let header: IPv4Header
    public let length: Int

    @inlinable
    public var transport: UnsafeMutableRawPointer { header.bytes + header.headerLength }
    @inlinable
    public var transportLength: Int { length &- header.headerLength }

    @inlinable
    public static func parse(_ bytes: UnsafeMutableRawPointer, count: Int) -> Result<IPv4Packet, IPv4ParseError> {
        guard count >= 20 else { return .failure(.tooShort) }
        let header = IPv4Header(unchecked: bytes)
        guard header.version == 4 else { return .failure(.notVersion4) }
        let headerLength = header.headerLength
        guard headerLength >= 20, headerLength <= count else { return .failure(.badHeaderLength) }
        let total = header.totalLength
        guard total >= headerLength, total <= count else { return .failure(.badTotalLength) }
        return .success(IPv4Packet(header: header, length: total))
    }

    @inlinable
    init(header: IPv4Header, length: Int) {
        self.header = header
        self.length = length
    }
}

// In-place views of the TCP, UDP and ICMP headers. The translator checks the transport
// length before building one, so accessors do no bounds checks of their own.

public enum IPProtocolNumber {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17

    /// The lower-case IANA keyword of the protocols masqd names in listings and audit lines, or nil.
    public static func name(_ number: UInt8) -> String? {
        switch number {
        case icmp: "icmp"
        case tcp: "tcp"
        case udp: "udp"
        case 33: "dccp"
        case 47: "gre"
        case 50: "esp"
        case 51: "ah"
        case 132: "sctp"
        case 136: "udplite"
        default: nil
        }
    }
}

/// TCP and UDP alike: the source port at byte 0, the destination port at byte 2.
public protocol TransportPortHeader {
    var bytes: UnsafeMutableRawPointer { get }
}

extension TransportPortHeader {
    @inlinable public var sourcePort: UInt16 { bytes.loadBE16(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.loadBE16(at: 2) }

    @inlinable public func setSourcePort(_ port: UInt16) { bytes.storeBE16(port, at: 0) }
    @inlinable public func setDestinationPort(_ port: UInt16) { bytes.storeBE16(port, at: 2) }

    /// Writes `port` as the source (or destination) port and returns the port it replaced.
    @inlinable public func replacePort(source: Bool, with port: UInt16) -> UInt16 {
        let offset = source ? 0 : 2
        let old = bytes.loadBE16(at: offset)
        bytes.storeBE16(port, at: offset)
        return old
    }
}

public struct TCPHeader: TransportPortHeader {
    public static let minimumLength = 20
    public let bytes: UnsafeMutableRawPointer

    @inlinable public init(unchecked bytes: UnsafeMutableRawPointer) { self.bytes = bytes }

    @inlinable public var sequenceNumber: UInt32 { bytes.loadBE32(at: 4) }
    @inlinable public var acknowledgementNumber: UInt32 { bytes.loadBE32(at: 8) }
    @inlinable public var dataOffset: Int { Int(bytes.loadBE8(at: 12) >> 4) &* 4 }
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes.loadBE8(at: 13)) }
    @inlinable public var window: UInt16 { bytes.loadBE16(at: 14) }
    @inlinable public var checksum: UInt16 { bytes.loadBE16(at: 16) }
    public static let checksumOffset = 16
}

public struct TCPFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}

public struct UDPHeader: TransportPortHeader {
    public static let length = 8
    public let bytes: UnsafeMutableRawPointer

    @inlinable public init(unchecked bytes: UnsafeMutableRawPointer) { self.bytes = bytes }

    @inlinable public var datagramLength: Int { Int(bytes.loadBE16(at: 4)) }
    @inlinable public var checksum: UInt16 { bytes.loadBE16(at: 6) }
    public static let checksumOffset = 6
}

public struct ICMPHeader {
    public static let length = 8
    public static let checksumOffset = 2
    public static let echoReply: UInt8 = 0
    public static let destinationUnreachable: UInt8 = 3
    public static let echoRequest: UInt8 = 8
    public static let timeExceeded: UInt8 = 11
    public static let parameterProblem: UInt8 = 12

    public let bytes: UnsafeMutableRawPointer

    @inlinable public init(unchecked bytes: UnsafeMutableRawPointer) { self.bytes = bytes }

    @inlinable public var type: UInt8 { bytes.loadBE8(at: 0) }
    @inlinable public var code: UInt8 { bytes.loadBE8(at: 1) }
    @inlinable public var checksum: UInt16 { bytes.loadBE16(at: 2) }
    /// Echo request/reply identifier (the "port" of an ICMP query, RFC 5508).
    @inlinable public var identifier: UInt16 { bytes.loadBE16(at: 4) }
    @inlinable public func setIdentifier(_ id: UInt16) { bytes.storeBE16(id, at: 4) }
    @inlinable public var isQuery: Bool { type == ICMPHeader.echoRequest || type == ICMPHeader.echoReply }
}

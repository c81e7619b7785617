// Crafts IPv4 + TCP/UDP/ICMP packets as bytes, checksummed by `RefChecksum` only (never by
// NATCore's checksum code, so a bug there cannot hide in the expected values).

/// What a built packet's TCP, UDP or ICMP checksum field holds.
public enum L4Checksum {
    /// A correct checksum (UDP: a computed 0 is sent as 0xffff).
    case valid
    /// What Linux leaves for CHECKSUM_PARTIAL: the folded pseudo-header sum, not complemented.
    /// (ICMP has no pseudo-header: the field is left 0.)
    case notReady
    /// The field is 0 (UDP: "no checksum").
    case zero
    /// Exactly this value.
    case raw(UInt16)
}

/// TCP flag bits, as they sit in the flags byte.
public enum TCPFlag {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
}

/// The IPv4 header fields a test may want to set; the rest (version, lengths, checksum,
/// addresses, protocol) the builder fills in.
public struct IPv4Fields {
    public var tos: UInt8 = 0
    public var identification: UInt16 = 0xbeef
    /// Flags (DF = 0x4000, MF = 0x2000) and fragment offset in 8-byte units.
    public var flagsAndFragment: UInt16 = 0x4000
    public var ttl: UInt8 = 64
    /// IP options, a multiple of 4 bytes.
    public var options: [UInt8] = []
    /// Link-layer padding after the total length (not part of the IP packet).
    public var trailing: [UInt8] = []

    public init(tos: UInt8 = 0, identification: UInt16 = 0xbeef, flagsAndFragment: UInt16 = 0x4000, ttl: UInt8 = 64,
                options: [UInt8] = [], trailing: [UInt8] = []) {
        self.tos = tos
        self.identification = identification
        self.flagsAndFragment = flagsAndFragment
        self.ttl = ttl
        self.options = options
        self.trailing = trailing
    }
}

/// Whole IPv4 packets as bytes, every length and checksum computed with `RefChecksum`.
public enum PacketBuilder {
    /// An IPv4 packet around `transport` (a TCP segment, UDP datagram or ICMP message already
    /// checksummed, or any bytes at all), with a valid header checksum.
    public static func ipv4(source: IPv4Bytes, destination: IPv4Bytes, protocolNumber: UInt8, transport: [UInt8], fields: IPv4Fields = IPv4Fields()) -> [UInt8] {
        precondition(fields.options.count % 4 == 0)
        let ihl = 5 + fields.options.count / 4
        let total = ihl * 4 + transport.count
        var header: [UInt8] = [
            0x40 | UInt8(ihl), fields.tos, UInt8(total >> 8), UInt8(total & 0xff),
            UInt8(fields.identification >> 8), UInt8(fields.identification & 0xff),
            UInt8(fields.flagsAndFragment >> 8), UInt8(fields.flagsAndFragment & 0xff),
            fields.ttl, protocolNumber, 0, 0,
        ]
        header += source.bytes + destination.bytes + fields.options
        let c = RefChecksum.checksum(header)
        header[10] = UInt8(c >> 8)
        header[11] = UInt8(c & 0xff)
        return header + transport + fields.trailing
    }

    /// An IPv4 + TCP segment; `options` must be a multiple of 4 bytes.
    public static func tcp(
        _ source: IPv4Bytes, _ sourcePort: UInt16, _ destination: IPv4Bytes, _ destinationPort: UInt16,
        flags: UInt8 = TCPFlag.syn, seq: UInt32 = 0x0102_0304, ack: UInt32 = 0, window: UInt16 = 64240,
        options: [UInt8] = [], payload: [UInt8] = [], checksum: L4Checksum = .valid, ip: IPv4Fields = IPv4Fields()
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let dataOffset = 5 + options.count / 4
        var segment: [UInt8] = [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
            UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff),
            UInt8(ack >> 24), UInt8(ack >> 16 & 0xff), UInt8(ack >> 8 & 0xff), UInt8(ack & 0xff),
            UInt8(dataOffset << 4), flags, UInt8(window >> 8), UInt8(window & 0xff),
            0, 0, 0, 0,
        ]
        segment += options + payload
        let pseudo = RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 6, length: segment.count)
        let value: UInt16
        switch checksum {
        case .valid: value = RefChecksum.checksum(pseudo + segment)
        case .notReady: value = RefChecksum.sum(pseudo)
        case .zero: value = 0
        case .raw(let v): value = v
        }
        segment[16] = UInt8(value >> 8)
        segment[17] = UInt8(value & 0xff)
        return ipv4(source: source, destination: destination, protocolNumber: 6, transport: segment, fields: ip)
    }

    /// An IPv4 + UDP datagram. `extra` bytes follow the datagram inside the IP packet but
    /// outside the UDP length; `lengthField` overrides the UDP length written (malformed cases).
    public static func udp(
        _ source: IPv4Bytes, _ sourcePort: UInt16, _ destination: IPv4Bytes, _ destinationPort: UInt16,
        payload: [UInt8] = Array("hello".utf8), checksum: L4Checksum = .valid, extra: [UInt8] = [],
        lengthField: Int? = nil, ip: IPv4Fields = IPv4Fields()
    ) -> [UInt8] {
        let length = 8 + payload.count
        let field = lengthField ?? length
        var datagram: [UInt8] = [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
            UInt8(field >> 8 & 0xff), UInt8(field & 0xff), 0, 0,
        ]
        datagram += payload
        let pseudo = RefChecksum.pseudoHeader(source: source, destination: destination, protocolNumber: 17, length: length)
        var value: UInt16
        switch checksum {
        case .valid:
            value = RefChecksum.checksum(pseudo + datagram)
            if value == 0 { value = 0xffff }
        case .notReady: value = RefChecksum.sum(pseudo)
        case .zero: value = 0
        case .raw(let v): value = v
        }
        datagram[6] = UInt8(value >> 8)
        datagram[7] = UInt8(value & 0xff)
        return ipv4(source: source, destination: destination, protocolNumber: 17, transport: datagram + extra, fields: ip)
    }

    /// An IPv4 + ICMP message, by default an echo request (type 8).
    public static func icmp(
        _ source: IPv4Bytes, _ destination: IPv4Bytes, type: UInt8 = 8, code: UInt8 = 0,
        identifier: UInt16, sequence: UInt16 = 1, payload: [UInt8] = Array("abcdefghijklmnop".utf8),
        checksum: L4Checksum = .valid, ip: IPv4Fields = IPv4Fields()
    ) -> [UInt8] {
        var message: [UInt8] = [
            type, code, 0, 0,
            UInt8(identifier >> 8), UInt8(identifier & 0xff), UInt8(sequence >> 8), UInt8(sequence & 0xff),
        ]
        message += payload
        let value: UInt16
        switch checksum {
        case .valid: value = RefChecksum.checksum(message)
        case .notReady, .zero: value = 0
        case .raw(let v): value = v
        }
        message[2] = UInt8(value >> 8)
        message[3] = UInt8(value & 0xff)
        return ipv4(source: source, destination: destination, protocolNumber: 1, transport: message, fields: ip)
    }

    /// An IPv4 + ICMP error (by default port unreachable, type 3 code 3) quoting `quoted` (the
    /// packet it is about, or any part of it). The 4 bytes after the checksum are unused but for
    /// `nextHopMTU` (fragmentation needed, type 3 code 4; RFC 1191).
    public static func icmpError(
        type: UInt8 = 3, code: UInt8 = 3, from source: IPv4Bytes, to destination: IPv4Bytes, quoting quoted: [UInt8],
        nextHopMTU: UInt16 = 0, ip: IPv4Fields = IPv4Fields()
    ) -> [UInt8] {
        icmp(source, destination, type: type, code: code, identifier: 0, sequence: nextHopMTU, payload: quoted, ip: ip)
    }

    /// TCP options NOP, NOP, SACK (RFC 2018) with the given (left edge, right edge) blocks:
    /// 4 + 8 × blocks.count bytes, so a multiple of 4 as `tcp(options:)` needs (at most 4 blocks).
    public static func sackOption(_ blocks: [(UInt32, UInt32)]) -> [UInt8] {
        var option: [UInt8] = [1, 1, 5, UInt8(2 + 8 * blocks.count)]
        for (left, right) in blocks {
            for v in [left, right] { option += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        }
        return option
    }
}

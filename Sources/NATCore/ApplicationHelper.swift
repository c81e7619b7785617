import CounterSet
// The helper API: how an application-level gateway (FTP, IRC, TFTP, SIP, …) plugs into the
// translator without touching its internals. A helper is attached to TCP connections and
// UDP flows by the port the client dialled (`HelperPort`). On TCP it sees each direction's
// payload as an ordered stream and can ask for an unfinished line to be held until the rest
// arrives; on UDP it sees each datagram's payload whole. Either way it can replace byte
// ranges (the core fixes lengths and checksums, and on TCP the sequence/acknowledgement
// numbers, SACK blocks included) and expect related inbound flows (which create their
// sessions when they arrive). See NATHelpers/TFTPHelper.swift (datagrams) and
// NATHelpers/FTPHelper.swift (a stream) for complete examples.
//
// Only connections with a helper pay for any of this: the packet path of every other flow
// never reaches this code.

/// An application-level gateway. Implementations must be stateless or keep their
/// per-connection state in `HelperContext.state` (the core bounds and frees it).
public protocol ApplicationHelper: AnyObject, Sendable {
    /// Short name, used in counters ("ftp").
    var name: String { get }
    /// Looks at the next bytes of one direction of a connection and edits them through
    /// `context`. On a stream (`context.transport == .stream`), `data` starts where the
    /// previous call stopped (after bytes held back by `.holdFrom`, which are presented
    /// again, first, with the new bytes). On a datagram flow, `data` is one datagram's whole
    /// payload and `.holdFrom` means nothing (the datagram passes).
    func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict
}

/// Which side sent the bytes: the client opened the TCP connection (or sent the UDP flow's
/// first datagram), the server accepted it.
public enum HelperDirection: Sendable, Equatable {
    case fromClient
    case fromServer
}

/// What a helper's bytes are: an ordered TCP byte stream, or one UDP datagram's payload.
public enum HelperTransport: Sendable, Equatable {
    case stream
    case datagram
}

/// Stream bytes given to a helper: valid only during `inspect`.
public struct HelperData {
    public let bytes: UnsafeRawBufferPointer
    public let direction: HelperDirection

    @inlinable
    public init(bytes: UnsafeRawBufferPointer, direction: HelperDirection) {
        self.bytes = bytes
        self.direction = direction
    }
}

public enum HelperVerdict: Equatable, Sendable {
    /// Everything inspected is done with (edits made through the context are applied).
    case pass
    /// Bytes from this offset on are an unfinished line: send what comes before (with its
    /// edits) and show these bytes again, in front of the next bytes of this direction.
    /// Bounded by `HelperLimits.heldBytes`; beyond that the bytes pass as they are.
    case holdFrom(Int)
}

/// Events a helper reports; each is counted per helper in `masqd stats`.
public enum HelperEvent: Int, CounterName, CustomStringConvertible {
    /// A command or reply was rewritten.
    case rewrite
    /// An expected connection was registered.
    case expectation
    /// An address in the payload was not the sender's own: passed unchanged.
    case refusedForeignAddress
    /// A port below 1024 was offered: passed unchanged.
    case refusedLowPort
    /// A line the helper should understand but could not parse: passed unchanged.
    case malformed
    /// An edit or expectation the core could not make (limits): passed unchanged.
    case limit
    /// A stream that does not look like the helper's protocol (or offered a foreign address
    /// where that ends trust in it): nothing more of it is parsed. Counted once per stream.
    case abandoned

    public var description: String {
        switch self {
        case .rewrite: "rewrites"
        case .expectation: "expectations"
        case .refusedForeignAddress: "refused_foreign_address"
        case .refusedLowPort: "refused_low_port"
        case .malformed: "malformed"
        case .limit: "limit"
        case .abandoned: "abandoned"
        }
    }
}

/// A port clients dial, with its protocol: `tcp:21`, `udp:69`. An integer literal is a TCP
/// port, so `ports: [21]` reads as it always did.
public struct HelperPort: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var protocolNumber: UInt8
    public var port: UInt16

    public init(protocolNumber: UInt8, port: UInt16) {
        precondition(protocolNumber == IPProtocolNumber.tcp || protocolNumber == IPProtocolNumber.udp,
                     "helpers attach to TCP and UDP only")
        self.protocolNumber = protocolNumber
        self.port = port
    }

    public static func tcp(_ port: UInt16) -> HelperPort { HelperPort(protocolNumber: IPProtocolNumber.tcp, port: port) }
    public static func udp(_ port: UInt16) -> HelperPort { HelperPort(protocolNumber: IPProtocolNumber.udp, port: port) }

    public init(integerLiteral port: UInt16) { self = .tcp(port) }

    public var transport: HelperTransport { protocolNumber == IPProtocolNumber.udp ? .datagram : .stream }
    public var description: String { "\(protocolNumber == IPProtocolNumber.udp ? "udp" : "tcp"):\(port)" }
}

/// A helper attached to the ports clients dial for it (e.g. FTP on tcp:21 and tcp:2121,
/// TFTP on udp:69, SIP on udp:5060 and tcp:5060).
public struct HelperRegistration: Sendable {
    public var helper: any ApplicationHelper
    public var ports: [HelperPort]

    public init(helper: any ApplicationHelper, ports: [HelperPort]) {
        self.helper = helper
        self.ports = ports
    }
}

/// Bounds on everything helpers can make the core hold.
public struct HelperLimits: Sendable, Equatable {
    /// Connections with a helper at once; a new one beyond this is dropped (counted).
    public var connections: Int = 1024
    /// Bytes of an unfinished line held per direction.
    public var heldBytes: Int = 512
    /// Expected connections pending in total, and per master connection.
    public var expectations: Int = 1024
    public var expectationsPerConnection: Int = 8
    /// Each internal host's share of both tables (an eighth of the defaults), so one host's
    /// flood of SYNs to port 21 or of PORT commands cannot take them from everyone.
    public var connectionsPerHost: Int = 128
    public var expectationsPerHost: Int = 128
    /// How long an expected connection may take to arrive.
    public var expectationTimeout: NATDuration = .seconds(120)
    /// PPTP calls (enhanced GRE call IDs) translated at once (GRECallTable.swift).
    public var greCalls: Int = 256

    public init() {}

    /// Edits remembered per direction (to rewrite retransmissions identically and map
    /// sequence numbers), and the largest replacement one edit may write.
    public static let editLog = 8
    public static let maxReplacement = 64
    /// Edits one call of `inspect` may make on a stream (`HelperContext.replace` refuses more).
    /// 8, the whole edit log: a SIP message over TCP names the address in up to 7 places.
    public static let editsPerInspect = 8
    /// Edits one datagram may take: no log to keep them in, so more than on a stream (a SIP
    /// message names the address in up to a dozen places).
    public static let editsPerDatagram = 24
}

/// Writes replacement text without allocating: ASCII, decimal numbers, addresses.
public struct HelperTextWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    public private(set) var count = 0
    /// Set when something did not fit; the edit is then refused.
    public private(set) var overflowed = false

    @usableFromInline
    init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    public mutating func write(byte: UInt8) {
        guard count < capacity else { overflowed = true; return }
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    public mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { write(byte: byte) } }
    }

    public mutating func write(decimal value: UInt32) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var length = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[length] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                length += 1
            } while n > 0
            for i in stride(from: length - 1, through: 0, by: -1) { write(byte: buffer[i]) }
        }
    }

    /// The four octets in decimal, joined by `separator` ("203.0.113.1" or "203,0,113,1").
    public mutating func write(address: IPv4Address, separator: UInt8) {
        var shift: UInt32 = 24
        while true {
            write(decimal: address.value >> shift & 0xff)
            if shift == 0 { return }
            write(byte: separator)
            shift -= 8
        }
    }
}

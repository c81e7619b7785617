// The helper API: how an application-level gateway (FTP, IRC, SIP, …) plugs into the
// translator without touching its internals. A helper is attached to TCP connections by
// the port the client dialled; it sees each direction's payload as an ordered stream, can
// replace byte ranges (the core fixes lengths, checksums and TCP sequence/acknowledgement
// numbers, SACK blocks included), can expect a related inbound connection (which creates
// its mapping when it arrives), and can ask for an unfinished line to be held until the
// rest of it arrives. See NATHelpers/FTPHelper.swift for a complete example.
//
// Only connections with a helper pay for any of this: the packet path of every other flow
// never reaches this code.

/// An application-level gateway. Implementations must be stateless or keep their
/// per-connection state in `HelperContext.state` (the core bounds and frees it).
public protocol ApplicationHelper: AnyObject, Sendable {
    /// Short name, used in counters ("ftp").
    var name: String { get }
    /// Looks at the next bytes of one direction of a connection and edits them through
    /// `context`. `data` starts where the previous call stopped (after bytes held back by
    /// `.holdFrom`, which are presented again, first, with the new bytes).
    func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict
}

/// Which side sent the bytes: the client opened the TCP connection, the server accepted it.
public enum HelperDirection: Sendable, Equatable {
    case fromClient
    case fromServer
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
public enum HelperEvent: Int, CaseIterable, Sendable, CustomStringConvertible {
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

    public var description: String {
        switch self {
        case .rewrite: "rewrites"
        case .expectation: "expectations"
        case .refusedForeignAddress: "refused_foreign_address"
        case .refusedLowPort: "refused_low_port"
        case .malformed: "malformed"
        case .limit: "limit"
        }
    }
}

/// A helper attached to the TCP ports clients dial for it (e.g. FTP on 21 and 2121).
public struct HelperRegistration: Sendable {
    public var helper: any ApplicationHelper
    public var ports: [UInt16]

    public init(helper: any ApplicationHelper, ports: [UInt16]) {
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
    /// How long an expected connection may take to arrive.
    public var expectationTimeout: NATDuration = .seconds(120)

    public init() {}

    /// Edits remembered per direction (to rewrite retransmissions identically and map
    /// sequence numbers), and the largest replacement one edit may write.
    public static let editLog = 8
    public static let maxReplacement = 64
    /// Edits one call of `inspect` may make (`HelperContext.replace` refuses more).
    public static let editsPerInspect = 4
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

// Reads the kernel's text about the router's own sockets — /proc/net/{tcp,udp,tcp6,udp6} and
// /proc/sys/net/ipv4/ip_local_port_range — into the ports the translator must leave to the
// router. Bytes in, ports out (the daemon reads the files): no syscalls here, and it is in
// the fuzz target. A line it cannot read is skipped and counted, never trusted in part.

public enum LocalSocketTable {
    /// Which file: the address column is 8 hex digits (IPv4) or 32 (IPv6).
    public enum Family: Sendable { case ipv4, ipv6 }

    public struct Outcome: Sendable, Equatable {
        /// Socket lines read, and of those bound to the WAN address or the wildcard.
        public var sockets = 0
        public var held = 0
        /// Lines that are neither the header nor a socket: skipped.
        public var malformed = 0
        public init() {}
    }

    /// Adds to `set` (as `protocolNumber`) the local port of every socket in `text` bound to
    /// `address` or to the wildcard (0.0.0.0, `::`, `::ffff:address`), whatever its state: a
    /// listener, a bound UDP socket, or a connection of the router's own, each owns the port
    /// on the WAN side. A last line without its newline is read too (it may be cut short).
    public static func addHeldPorts(_ text: UnsafeRawBufferPointer, family: Family, protocolNumber: UInt8,
                                    address: IPv4Address?, into set: inout LocalPortSet) -> Outcome {
        var outcome = Outcome()
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count, text[end] != 10 { end += 1 }
            switch readLine(text, start, end, family: family) {
            case .socket(let local, let port):
                outcome.sockets += 1
                if local == 0 || local == address?.value {
                    outcome.held += 1
                    set.insert(protocolNumber: protocolNumber, port: port)
                }
            case .otherAddress: outcome.sockets += 1
            case .header, .empty: break
            case .malformed: outcome.malformed += 1
            }
            start = end + 1
        }
        return outcome
    }

    /// `ip_local_port_range`: two decimal numbers separated by white space, the first not
    /// above the second, both 1-65535. Nil for anything else.
    public static func parsePortRange(_ text: UnsafeRawBufferPointer) -> ClosedRange<UInt16>? {
        var numbers: [Int] = [] // at most 2
        var i = 0
        while i < text.count {
            let byte = text[i]
            if byte == 32 || byte == 9 || byte == 10 { i += 1; continue }
            var value = 0, digits = 0
            while i < text.count, (48...57).contains(text[i]) {
                value = value * 10 + Int(text[i] - 48)
                digits += 1
                i += 1
                if digits > 5 { return nil }
            }
            guard digits > 0, numbers.count < 2 else { return nil }
            numbers.append(value)
        }
        guard numbers.count == 2, (1...65535).contains(numbers[0]), (numbers[0]...65535).contains(numbers[1]) else { return nil }
        return UInt16(numbers[0])...UInt16(numbers[1])
    }

    enum Line: Equatable {
        /// Bound to an IPv4 address (0: the wildcard) or to the IPv6 wildcard.
        case socket(local: UInt32, port: UInt16)
        /// Bound to an IPv6 address that is no IPv4 address of ours.
        case otherAddress
        case header, empty, malformed
    }

    /// `  12: 0100007F:0CEA 00000000:0000 0A …`: slot number, local address:port (the address
    /// as the kernel's in-memory words in hex, the port in host order), remote, state, ….
    static func readLine(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int, family: Family) -> Line {
        var i = start
        while i < end, text[i] == 32 { i += 1 }
        if i == end { return .empty }
        if text[i] == UInt8(ascii: "s") { return isHeader(text, i, end) ? .header : .malformed }
        // The slot: decimal digits and a colon.
        let slotStart = i
        while i < end, (48...57).contains(text[i]) { i += 1 }
        guard i > slotStart, i - slotStart <= 9, i < end, text[i] == UInt8(ascii: ":") else { return .malformed }
        i += 1
        guard i < end, text[i] == 32 else { return .malformed }
        while i < end, text[i] == 32 { i += 1 }
        let words = family == .ipv4 ? 1 : 4
        var address: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0) // the in-memory words, as printed
        for w in 0..<words {
            guard let word = hex(text, i, 8, end) else { return .malformed }
            switch w {
            case 0: address.0 = word
            case 1: address.1 = word
            case 2: address.2 = word
            default: address.3 = word
            }
            i += 8
        }
        guard i < end, text[i] == UInt8(ascii: ":"), let port = hex(text, i + 1, 4, end) else { return .malformed }
        i += 5
        guard i < end, text[i] == 32 else { return .malformed }
        // The words hold the address bytes in network order: big-endian, whatever the host.
        let ipv4: UInt32?
        switch family {
        case .ipv4: ipv4 = UInt32(bigEndian: address.0)
        case .ipv6:
            let upper = address.0 | address.1
            let third = UInt32(bigEndian: address.2)
            if upper == 0, third == 0, address.3 == 0 { ipv4 = 0 } // ::
            else if upper == 0, third == 0x0000_ffff { ipv4 = UInt32(bigEndian: address.3) } // ::ffff:a.b.c.d
            else { ipv4 = nil }
        }
        guard let ipv4 else { return .otherAddress }
        return .socket(local: ipv4, port: UInt16(port))
    }

    /// `sl  local_address …`: "sl", spaces, "local_address".
    private static func isHeader(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        guard end - start > 2, text[start + 1] == UInt8(ascii: "l"), text[start + 2] == 32 else { return false }
        var i = start + 2
        while i < end, text[i] == 32 { i += 1 }
        let expected = "local_address".utf8
        guard end - i >= expected.count else { return false }
        for (k, byte) in expected.enumerated() where text[i + k] != byte { return false }
        return true
    }

    /// Exactly `count` hex digits (either case) from `start`, before `end`.
    private static func hex(_ text: UnsafeRawBufferPointer, _ start: Int, _ count: Int, _ end: Int) -> UInt32? {
        guard start + count <= end else { return nil }
        var value: UInt32 = 0
        for k in 0..<count {
            let c = text[start + k]
            let digit: UInt8
            switch c {
            case 48...57: digit = c - 48
            case 65...70: digit = c - 55
            case 97...102: digit = c - 87
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

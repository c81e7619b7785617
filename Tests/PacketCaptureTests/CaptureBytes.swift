// Capture files written byte by byte for the tests, independently of the code under test:
// every field is spelled out with its width and byte order.

enum Order { case big, little }

struct CaptureBytes {
    var bytes: [UInt8] = []
    let order: Order

    init(_ order: Order) { self.order = order }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func u16(_ v: UInt16) {
        let pair = [UInt8(v >> 8), UInt8(v & 0xff)]
        bytes += order == .big ? pair : pair.reversed()
    }

    mutating func u32(_ v: UInt32) {
        let four = [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        bytes += order == .big ? four : four.reversed()
    }

    mutating func raw(_ b: [UInt8]) { bytes += b }

    mutating func pad4() { while bytes.count % 4 != 0 { bytes.append(0) } }

    // MARK: classic pcap

    static func pcapHeader(_ order: Order, magic: UInt32 = 0xa1b2_c3d4, major: UInt16 = 2, minor: UInt16 = 4,
                           snapLength: UInt32 = 65535, linkType: UInt32 = 1) -> CaptureBytes {
        var c = CaptureBytes(order)
        c.u32(magic)
        c.u16(major)
        c.u16(minor)
        c.u32(0)            // thiszone
        c.u32(0)            // sigfigs
        c.u32(snapLength)
        c.u32(linkType)
        return c
    }

    mutating func pcapRecord(seconds: UInt32, fraction: UInt32, data: [UInt8], originalLength: UInt32? = nil,
                             capturedLength: UInt32? = nil) {
        u32(seconds)
        u32(fraction)
        u32(capturedLength ?? UInt32(data.count))
        u32(originalLength ?? UInt32(data.count))
        raw(data)
    }

    // MARK: pcapng

    /// A block: type, total length, body, total length. `lengthOverride` writes a wrong leading length.
    mutating func block(type: UInt32, lengthOverride: UInt32? = nil, trailingOverride: UInt32? = nil, _ body: (inout CaptureBytes) -> Void) {
        var inner = CaptureBytes(order)
        body(&inner)
        inner.pad4()
        let length = UInt32(12 + inner.bytes.count)
        u32(type)
        u32(lengthOverride ?? length)
        raw(inner.bytes)
        u32(trailingOverride ?? length)
    }

    mutating func sectionHeader(major: UInt16 = 1, minor: UInt16 = 0) {
        block(type: 0x0a0d_0d0a) { b in
            b.u32(0x1a2b_3c4d)
            b.u16(major)
            b.u16(minor)
            b.u32(0xffff_ffff)  // section length: unknown (-1), 64 bits
            b.u32(0xffff_ffff)
        }
    }

    mutating func option(_ code: UInt16, _ value: [UInt8]) {
        u16(code)
        u16(UInt16(value.count))
        raw(value)
        pad4()
    }

    mutating func interfaceDescription(linkType: UInt16, snapLength: UInt32 = 0, name: String? = nil, tsresol: UInt8? = nil) {
        block(type: 1) { b in
            b.u16(linkType)
            b.u16(0)
            b.u32(snapLength)
            if let name { b.option(2, Array(name.utf8)) }
            if let tsresol { b.option(9, [tsresol]) }
            if name != nil || tsresol != nil { b.u16(0); b.u16(0) } // opt_endofopt
        }
    }

    mutating func enhancedPacket(interface: UInt32, timestamp: UInt64, data: [UInt8], originalLength: UInt32? = nil,
                                 capturedLength: UInt32? = nil) {
        block(type: 6) { b in
            b.u32(interface)
            b.u32(UInt32(timestamp >> 32))
            b.u32(UInt32(timestamp & 0xffff_ffff))
            b.u32(capturedLength ?? UInt32(data.count))
            b.u32(originalLength ?? UInt32(data.count))
            b.raw(data)
        }
    }

    mutating func simplePacket(originalLength: UInt32, data: [UInt8]) {
        block(type: 3) { b in
            b.u32(originalLength)
            b.raw(data)
        }
    }
}

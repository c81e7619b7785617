import NATCore

// Packets for the benchmarks: valid IPv4/UDP/TCP bytes with correct checksums.

enum PacketTemplates {
    /// A UDP datagram with `payload` bytes of data.
    static func udp(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16, payload: Int = 18,
                    text: [UInt8]? = nil) -> [UInt8] {
        let length = 8 + (text?.count ?? payload)
        return transport(protocolNumber: IPProtocolNumber.udp, source: source, destination: destination,
                         header: [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
                                  UInt8(length >> 8), UInt8(length & 0xff), 0, 0],
                         checksumOffset: 6, payload: payload, text: text)
    }

    /// A TCP segment with `payload` bytes of data (or the given text), sequence and flags.
    static func tcp(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16, payload: Int = 0,
                    text: [UInt8]? = nil, sequence: UInt32 = 0x0100_0001, acknowledgement: UInt32 = 1, flags: UInt8 = 0x10) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 20)
        header[0] = UInt8(sourcePort >> 8); header[1] = UInt8(sourcePort & 0xff)
        header[2] = UInt8(destinationPort >> 8); header[3] = UInt8(destinationPort & 0xff)
        for i in 0..<4 {
            header[4 + i] = UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32(i)))
            header[8 + i] = UInt8(truncatingIfNeeded: acknowledgement >> (24 - 8 * UInt32(i)))
        }
        header[12] = 5 << 4
        header[13] = flags
        header[14] = 0xff; header[15] = 0xff
        return transport(protocolNumber: IPProtocolNumber.tcp, source: source, destination: destination,
                         header: header, checksumOffset: 16, payload: payload, text: text)
    }

    private static func transport(protocolNumber: UInt8, source: IPv4Address, destination: IPv4Address,
                                  header: [UInt8], checksumOffset: Int, payload: Int, text: [UInt8]? = nil) -> [UInt8] {
        let payload = text?.count ?? payload
        let total = 20 + header.count + payload
        var bytes = [UInt8](repeating: 0, count: total)
        bytes[0] = 0x45
        bytes[2] = UInt8(total >> 8); bytes[3] = UInt8(total & 0xff)
        bytes[8] = 64; bytes[9] = protocolNumber
        for i in 0..<4 {
            bytes[12 + i] = UInt8(truncatingIfNeeded: source.value >> (24 - 8 * i))
            bytes[16 + i] = UInt8(truncatingIfNeeded: destination.value >> (24 - 8 * i))
        }
        for (i, b) in header.enumerated() { bytes[20 + i] = b }
        for i in 0..<payload { bytes[20 + header.count + i] = text?[i] ?? UInt8(truncatingIfNeeded: i &* 7) }
        bytes.withUnsafeMutableBytes { raw in
            let ipSum = InternetChecksum.checksum(raw.baseAddress!, count: 20)
            raw[10] = UInt8(ipSum >> 8); raw[11] = UInt8(ipSum & 0xff)
            let l4 = raw.baseAddress! + 20
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source.value, destination: destination.value,
                                                          protocolNumber: protocolNumber, length: total - 20)
            let sum = ~InternetChecksum.add(pseudo, InternetChecksum.sum(l4, count: total - 20))
            raw[20 + checksumOffset] = UInt8(sum >> 8); raw[21 + checksumOffset] = UInt8(sum & 0xff)
        }
        return bytes
    }
}

extension PacketTemplates {
    /// `datagram` cut into fragments of `size` payload bytes (a multiple of 8), as the kernel would.
    static func fragments(of datagram: [UInt8], size: Int) -> [[UInt8]] {
        let body = Array(datagram[20...])
        var pieces: [[UInt8]] = []
        var offset = 0
        while offset < body.count {
            let length = min(size, body.count - offset)
            var piece = Array(datagram[0..<20]) + body[offset..<(offset + length)]
            let total = 20 + length
            piece[2] = UInt8(total >> 8); piece[3] = UInt8(total & 0xff)
            let more: UInt16 = offset + length < body.count ? 0x2000 : 0
            let field = more | UInt16(offset / 8)
            piece[6] = UInt8(field >> 8); piece[7] = UInt8(field & 0xff)
            piece[10] = 0; piece[11] = 0
            piece.withUnsafeMutableBytes { raw in
                let sum = InternetChecksum.checksum(raw.baseAddress!, count: 20)
                raw[10] = UInt8(sum >> 8); raw[11] = UInt8(sum & 0xff)
            }
            pieces.append(piece)
            offset += length
        }
        return pieces
    }
}

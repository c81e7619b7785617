// The kit's reader and checks on packets whose bytes are written out by hand here, so the
// builder, the reader and the reference checksum are each checked against something else.

import NATTestKit
import Testing

@Suite("NATTestKit: PacketReader, Verify")
struct PacketReaderTests {
    /// 192.0.2.10:40000 → 198.51.100.5:7 UDP "hi", checksums worked out by hand:
    /// IP header words 0x4500+0x001e+0xbeef+0x4000+0x4011+0xc000+0x020a+0xc633+0x6405 = 0x3_7060,
    /// folded 0x7063, checksum 0x8f9c; UDP: pseudo-header (addresses, 0x0011, 0x000a), header
    /// and "hi" sum to 0x2_f117, folded 0xf119, checksum 0x0ee6.
    static let handWritten: [UInt8] = [
        0x45, 0x00, 0x00, 0x1e, 0xbe, 0xef, 0x40, 0x00, 0x40, 0x11, 0x8f, 0x9c,
        192, 0, 2, 10, 198, 51, 100, 5,
        0x9c, 0x40, 0x00, 0x07, 0x00, 0x0a, 0x0e, 0xe6, 0x68, 0x69,
    ]

    @Test("the builder writes a hand-checked UDP datagram byte for byte, and the reader reads it back")
    func udpByHand() {
        let built = PacketBuilder.udp(IPv4Bytes(192, 0, 2, 10), 40000, IPv4Bytes(198, 51, 100, 5), 7, payload: Array("hi".utf8))
        #expect(built == Self.handWritten)
        let p = Self.handWritten
        #expect(PacketReader.protocolNumber(p) == 17)
        #expect(PacketReader.sourceAddress(p) == IPv4Bytes(192, 0, 2, 10))
        #expect(PacketReader.destinationAddress(p) == IPv4Bytes(198, 51, 100, 5))
        #expect(PacketReader.sourcePort(p) == 40000 && PacketReader.destinationPort(p) == 7)
        #expect(PacketReader.payload(p) == Array("hi".utf8))
        #expect(Verify.wellFormed(p))
    }

    @Test("an ICMP error quoting the hand-checked datagram: type, code, next-hop MTU, the quote, a hand-checked checksum")
    func icmpErrorByHand() {
        // ICMP words 0x0304+0x0000+0x0000+0x0500 and the quote's 15 words sum to 0x5_1ba0,
        // folded 0x1ba5, checksum 0xe45a.
        let error = PacketBuilder.icmpError(code: 4, from: IPv4Bytes(198, 51, 100, 5), to: IPv4Bytes(192, 0, 2, 10),
                                            quoting: Self.handWritten, nextHopMTU: 1280)
        #expect(Array(error[20..<28]) == [3, 4, 0xe4, 0x5a, 0, 0, 0x05, 0x00])
        #expect(Array(error[28...]) == Self.handWritten)
        #expect(PacketReader.protocolNumber(error) == 1 && PacketReader.totalLength(error) == 58 && Verify.wellFormed(error))
    }

    @Test("any flipped bit of a datagram's header or payload fails the independent checks")
    func everyFlippedBitIsCaught() {
        for index in 0..<Self.handWritten.count where index != 2 && index != 3 { // lengths are checked apart
            var p = Self.handWritten
            p[index] ^= 0x01
            #expect(!Verify.ipHeaderChecksumValid(p) || !Verify.transportChecksumValid(p), "byte \(index)")
        }
        var truncated = Self.handWritten
        truncated.removeLast()
        #expect(!Verify.wellFormed(truncated))
    }

    @Test("TCP fields, SACK blocks and payload read back as built")
    func tcpFields() {
        let blocks: [(UInt32, UInt32)] = [(1000, 2000), (0xffff_ff00, 5)]
        let p = PacketBuilder.tcp(IPv4Bytes(192, 0, 2, 10), 1234, IPv4Bytes(198, 51, 100, 5), 21,
                                  flags: TCPFlag.ack | TCPFlag.psh, seq: 0xdead_beef, ack: 77,
                                  options: PacketBuilder.sackOption(blocks), payload: Array("USER x\r\n".utf8))
        #expect(Verify.wellFormed(p))
        #expect(PacketReader.seq(p) == 0xdead_beef && PacketReader.ack(p) == 77)
        #expect(PacketReader.flags(p) == TCPFlag.ack | TCPFlag.psh)
        #expect(PacketReader.dataOffset(p) == 20 + 20)
        #expect(PacketReader.sackBlocks(p).map { [$0.0, $0.1] } == blocks.map { [$0.0, $0.1] })
        #expect(PacketReader.payload(p) == Array("USER x\r\n".utf8))
    }

    @Test("ICMP echo: the identifier stands in for both ports")
    func icmpIdentifier() {
        let p = PacketBuilder.icmp(IPv4Bytes(192, 0, 2, 10), IPv4Bytes(198, 51, 100, 5), identifier: 0x1234)
        #expect(Verify.wellFormed(p))
        #expect(PacketReader.sourcePort(p) == 0x1234 && PacketReader.destinationPort(p) == 0x1234)
        #expect(PacketReader.payload(p) == Array("abcdefghijklmnop".utf8))
    }
}

import Foundation
import Masqd
import MasqdShell
import NATTestKit

#if canImport(Glibc)
import Glibc
#endif

// Captures for the replay tests, written byte by byte (classic pcap, little-endian,
// microseconds; pcapng little-endian), with packets from PacketTestSupport's builder, and
// tcpdump's reading of a capture, packet by packet.

enum ReplayCapture {
    static let client = IPv4Bytes(192, 0, 2, 10)
    static let server = IPv4Bytes(203, 0, 113, 2)
    static let wan = IPv4Bytes(203, 0, 113, 1)
    static let clientPort: UInt16 = 40100
    /// 1700000000 s: timestamps in the output are checked against these.
    static let epochSeconds: UInt32 = 1_700_000_000

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    /// Ethernet: destination, source, EtherType IPv4.
    static func ethernet(_ ip: [UInt8]) -> [UInt8] {
        [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00] + ip
    }

    /// A classic pcap (magic 0xa1b2c3d4 little-endian, version 2.4) of `frames`, each at
    /// `epochSeconds` + its offset in microseconds.
    static func pcap(linkType: UInt32 = 1, _ frames: [(microseconds: UInt32, frame: [UInt8])]) -> [UInt8] {
        var file = le32(0xa1b2_c3d4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65535) + le32(linkType)
        for (microseconds, frame) in frames {
            file += le32(epochSeconds + microseconds / 1_000_000) + le32(microseconds % 1_000_000)
            file += le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
        }
        return file
    }

    /// A little-endian pcapng block: type, length, body padded to 4 bytes, length.
    static func pcapngBlock(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = UInt32(12 + padded.count)
        return le32(type) + le32(length) + padded + le32(length)
    }

    /// A pcapng section with one interface per (name, link type) and enhanced packets on them
    /// (microsecond timestamps, the default resolution).
    static func pcapng(interfaces: [(name: String, linkType: UInt16)], _ packets: [(interface: UInt32, microseconds: UInt32, frame: [UInt8])]) -> [UInt8] {
        var file = pcapngBlock(0x0a0d_0d0a, le32(0x1a2b_3c4d) + le16(1) + le16(0) + le32(0xffff_ffff) + le32(0xffff_ffff))
        for (name, linkType) in interfaces {
            let nameBytes = Array(name.utf8)
            let option = le16(2) + le16(UInt16(nameBytes.count)) + nameBytes + [UInt8](repeating: 0, count: (4 - nameBytes.count % 4) % 4)
            file += pcapngBlock(1, le16(linkType) + le16(0) + le32(0) + option + le32(0))
        }
        for (interface, microseconds, frame) in packets {
            let time = UInt64(epochSeconds) * 1_000_000 + UInt64(microseconds)
            file += pcapngBlock(6, le32(interface) + le32(UInt32(time >> 32)) + le32(UInt32(time & 0xffff_ffff))
                                    + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame)
        }
        return file
    }

    static let portCommand = Array("PORT 192,0,2,10,156,64\r\n".utf8)
    static let rewrittenPortCommand = Array("PORT 203,0,113,1,156,64\r\n".utf8)

    /// The IP packets of an FTP control conversation (handshake, banner, PORT, its reply), a
    /// UDP exchange, a packet already translated (left out) and a DCCP header from inside cut
    /// before its checksum (dropped: malformed), as a NAT sees them: outbound from the LAN client, inbound to the
    /// WAN address (the client's port is kept, so replies name 40100).
    static func ftpAndUDP() -> [(microseconds: UInt32, ip: [UInt8])] {
        let ack = TCPFlag.ack, pshAck = TCPFlag.psh | TCPFlag.ack
        let banner = Array("220 ready\r\n".utf8), okay = Array("200 PORT command successful\r\n".utf8)
        return [
            (0, PacketBuilder.tcp(client, clientPort, server, 21, flags: TCPFlag.syn, seq: 1000)),
            (10_000, PacketBuilder.tcp(server, 21, wan, clientPort, flags: TCPFlag.syn | ack, seq: 5000, ack: 1001)),
            (20_000, PacketBuilder.tcp(client, clientPort, server, 21, flags: ack, seq: 1001, ack: 5001)),
            (30_000, PacketBuilder.tcp(server, 21, wan, clientPort, flags: pshAck, seq: 5001, ack: 1001, payload: banner)),
            (40_000, PacketBuilder.tcp(client, clientPort, server, 21, flags: ack, seq: 1001, ack: 5001 + UInt32(banner.count))),
            (50_000, PacketBuilder.tcp(client, clientPort, server, 21, flags: pshAck, seq: 1001, ack: 5001 + UInt32(banner.count), payload: portCommand)),
            // The server saw the rewritten, one byte longer line.
            (60_000, PacketBuilder.tcp(server, 21, wan, clientPort, flags: pshAck, seq: 5001 + UInt32(banner.count),
                                       ack: 1001 + UInt32(rewrittenPortCommand.count), payload: okay)),
            (100_000, PacketBuilder.udp(client, 5353, server, 9999, payload: Array("ping".utf8))),
            (110_000, PacketBuilder.udp(server, 9999, wan, 5353, payload: Array("pong".utf8))),
            (200_000, PacketBuilder.udp(wan, 5353, server, 9999, payload: Array("seen after the NAT".utf8))),
            (300_000, PacketBuilder.ipv4(source: client, destination: server, protocolNumber: 33, transport: [0, 0, 0x08, 0x00])),
        ]
    }
}

/// One packet as `tcpdump -r FILE -nn -vv -X -tt` prints it: its text lines and the bytes of
/// its hex dump (from the IP header on).
struct TcpdumpPacket {
    var text: String
    var bytes: [UInt8]

    /// Splits tcpdump's output into packets: each starts with a line that does not start with
    /// white space; hex dump lines are "\t0xOFFS:  hhhh hhhh …  ascii".
    static func parse(_ output: String) -> [TcpdumpPacket] {
        var packets: [TcpdumpPacket] = []
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            if let first = line.first, !first.isWhitespace {
                packets.append(TcpdumpPacket(text: String(line), bytes: []))
                continue
            }
            guard !packets.isEmpty else { continue }
            let trimmed = line.drop { $0.isWhitespace }
            if trimmed.hasPrefix("0x"), let colon = trimmed.firstIndex(of: ":") {
                // The hex groups end where two spaces lead to the ASCII column.
                var hex = trimmed[trimmed.index(after: colon)...].drop { $0 == " " }
                if let end = hex.range(of: "  ") { hex = hex[..<end.lowerBound] }
                for group in hex.split(separator: " ") {
                    var digits = Substring(group)
                    while digits.count >= 2, let byte = UInt8(digits.prefix(2), radix: 16) {
                        packets[packets.count - 1].bytes.append(byte)
                        digits = digits.dropFirst(2)
                    }
                }
            } else {
                packets[packets.count - 1].text += "\n" + line
            }
        }
        return packets
    }

    /// The IP source and destination (with ports) from the "A.B.C.D.PORT > E.F.G.H.PORT:" part.
    var flow: String? {
        guard let range = text.range(of: #"\d+\.\d+\.\d+\.\d+(\.\d+)? > \d+\.\d+\.\d+\.\d+(\.\d+)?"#, options: .regularExpression) else { return nil }
        return String(text[range])
    }

    func contains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= bytes.count else { return false }
        return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<$0 + needle.count]) == needle }
    }
}

enum ReplayRunner {
    /// `masqd replay ARGS`.
    static func replay(_ masqd: String, _ args: [String]) throws -> CommandResult {
        try Shell.run([masqd, "replay"] + args, timeout: 60)
    }

    /// `tcpdump -r FILE -nn -vv -X -tt` with nanosecond timestamps.
    static func tcpdump(_ file: String, _ extra: [String] = []) throws -> CommandResult {
        try Shell.run(["tcpdump", "-r", file, "-nn", "-vv", "-X", "-tt", "--time-stamp-precision", "nano"] + extra, timeout: 30)
    }

    static func temporaryDirectory(_ tag: String) throws -> String {
        let path = "/tmp/masqd-replay-\(getpid())-\(tag)"
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

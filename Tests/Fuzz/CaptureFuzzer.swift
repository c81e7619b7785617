// libFuzzer harness for PacketCapture: any bytes are a capture file. Reading must end in
// packets or a CaptureError, never a trap, and what it returns must hold together: every
// packet's bytes lie within the input, after its record's start, in file order, no larger
// than the cap; link-layer headers fit their frames; errors point into the input; reading
// twice gives the same answer; and the packets read, written with PcapWriter and read back,
// come back equal. A broken invariant traps (`fail`) with a message.
//
// FUZZ_WRITE_SEEDS=DIR writes a seed corpus (pcap in both orders and resolutions, pcapng with
// two sections, every block type read) to DIR and exits.
//
// Built by Tests/Fuzz/run-fuzz.sh (swiftc -sanitize=fuzzer,address -parse-as-library).

#if canImport(Glibc)
import Glibc
#endif
import PacketCapture

func fail(_ message: String) -> Never {
    say("capture-fuzz: INVARIANT BROKEN: \(message)")
    fatalError(message)
}

/// Every packet up to the end or the first error.
func readAll(_ input: [UInt8]) -> (packets: [CapturedPacket], error: CaptureError?) {
    var packets: [CapturedPacket] = []
    do {
        var reader = try CaptureReader(input)
        while let packet = try reader.next() {
            packets.append(packet)
            // Every record or block takes at least 12 bytes, so this bounds the loop.
            check(packets.count <= input.count / 12, "more packets (\(packets.count)) than the input can hold")
        }
        return (packets, nil)
    } catch {
        return (packets, error)
    }
}

func checkPackets(_ packets: [CapturedPacket], error: CaptureError?, input: [UInt8]) {
    var previousOffset = -1
    for (index, packet) in packets.enumerated() {
        let data = packet.data
        check(data.startIndex >= 0 && data.endIndex <= input.count, "packet \(index): bytes \(data.indices) outside the input (\(input.count))")
        check(data.count <= CaptureLimits.maximumPacketLength, "packet \(index): \(data.count) bytes, above the cap")
        check(packet.fileOffset > previousOffset, "packet \(index): offset \(packet.fileOffset) not after \(previousOffset)")
        check(data.startIndex > packet.fileOffset, "packet \(index): data at \(data.startIndex) before its record at \(packet.fileOffset)")
        check(data.elementsEqual(input[data.indices]), "packet \(index): bytes differ from the input's")
        previousOffset = packet.fileOffset
        switch LinkLayer.locateIPv4(in: data, linkType: packet.linkType) {
        case .ipv4(let headerLength):
            check(headerLength >= 0 && headerLength <= data.count, "packet \(index): link header \(headerLength) beyond \(data.count) bytes")
            check(packet.linkType.isSupported, "packet \(index): IPv4 found in unsupported link type \(packet.linkType)")
        case .unsupportedLinkType:
            check(!packet.linkType.isSupported, "packet \(index): supported link type \(packet.linkType) refused")
        case .notIPv4, .truncated:
            break
        }
    }
    if let error {
        check(error.offset >= 0 && error.offset <= input.count, "error offset \(error.offset) outside the input: \(error)")
        check(!error.description.isEmpty, "empty error description")
    }
}

/// Writes the packets and reads them back: the same bytes, times and lengths.
func checkRoundTrip(_ packets: [CapturedPacket]) {
    let linkType = packets.first?.linkType ?? .raw
    var writer = PcapWriter(linkType: linkType)
    var written: [CapturedPacket] = []
    for packet in packets {
        let time = packet.timestampNanoseconds ?? 0
        // The link-layer header goes in as its own part where there is one: the record must not care.
        var split = 0
        if case .ipv4(let headerLength) = LinkLayer.locateIPv4(in: packet.data, linkType: packet.linkType) { split = headerLength }
        let header = packet.data.prefix(split), rest = packet.data.dropFirst(split)
        do {
            try writer.append(timestampNanoseconds: time, linkHeader: header, packet: rest, originalLength: packet.originalLength)
            written.append(packet)
        } catch {
            check(error.problem == .timestampOutOfRange && time / 1_000_000_000 > UInt64(UInt32.max),
                  "writer refused a packet it should take: \(error)")
        }
    }
    check(writer.packetCount == written.count, "writer counted \(writer.packetCount), wrote \(written.count)")
    let (back, error) = readAll(writer.bytes)
    check(error == nil, "the writer's output does not read back: \(error.map { "\($0)" } ?? "")")
    check(back.count == written.count, "wrote \(written.count) packets, read back \(back.count)")
    for (index, (original, copy)) in zip(written, back).enumerated() {
        check(copy.data.elementsEqual(original.data), "round trip \(index): bytes differ")
        check(copy.timestampNanoseconds == (original.timestampNanoseconds ?? 0), "round trip \(index): time differs")
        check(copy.originalLength == original.originalLength, "round trip \(index): original length differs")
        check(copy.linkType == linkType, "round trip \(index): link type differs")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func captureFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let first = readAll(input)
    checkPackets(first.packets, error: first.error, input: input)
    let second = readAll(input)
    check(second.packets == first.packets && second.error == first.error, "reading twice differs")
    checkRoundTrip(first.packets)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func captureFuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?,
                                  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    if let directory = getenv("FUZZ_WRITE_SEEDS") {
        CaptureSeeds.write(to: String(cString: directory))
        exit(0)
    }
    return 0
}

// MARK: - seeds

enum CaptureSeeds {
    struct Bytes {
        var bytes: [UInt8] = []
        let big: Bool
        mutating func u16(_ v: UInt16) { bytes += big ? [UInt8(v >> 8), UInt8(v & 0xff)] : [UInt8(v & 0xff), UInt8(v >> 8)] }
        mutating func u32(_ v: UInt32) {
            let b = [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
            bytes += big ? b : b.reversed()
        }
        mutating func block(_ type: UInt32, _ body: [UInt8]) {
            let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
            u32(type); u32(UInt32(12 + padded.count)); bytes += padded; u32(UInt32(12 + padded.count))
        }
        func field16(_ v: UInt16) -> [UInt8] { var b = Bytes(big: big); b.u16(v); return b.bytes }
        func field32(_ v: UInt32) -> [UInt8] { var b = Bytes(big: big); b.u32(v); return b.bytes }
    }

    static let ipv4: [UInt8] = [0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 10, 203, 0, 113, 2,
                                0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]
    static let ethernet: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00] + ipv4
    static let vlan: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0, 5, 0x08, 0x00] + ipv4
    static let sll: [UInt8] = [0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, 0x08, 0x00] + ipv4
    static let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 2, 0, 0] + ipv4

    static func pcap(big: Bool, nanoseconds: Bool, linkType: UInt32, _ frames: [[UInt8]]) -> [UInt8] {
        var b = Bytes(big: big)
        b.u32(nanoseconds ? 0xa1b2_3c4d : 0xa1b2_c3d4); b.u16(2); b.u16(4); b.u32(0); b.u32(0); b.u32(65535); b.u32(linkType)
        for (index, frame) in frames.enumerated() {
            b.u32(1_700_000_000 + UInt32(index)); b.u32(UInt32(index) * 1000)
            b.u32(UInt32(frame.count)); b.u32(UInt32(frame.count) + UInt32(index)); b.bytes += frame
        }
        return b.bytes
    }

    static func pcapngSection(big: Bool) -> [UInt8] {
        var b = Bytes(big: big)
        b.block(0x0a0d_0d0a, b.field32(0x1a2b_3c4d) + b.field16(1) + b.field16(0) + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        let name = Array("eth0".utf8)
        b.block(1, b.field16(1) + b.field16(0) + b.field32(0) + b.field16(2) + b.field16(4) + name
                + b.field16(9) + b.field16(1) + [9, 0, 0, 0] + b.field16(0) + b.field16(0))
        b.block(1, b.field16(276) + b.field16(0) + b.field32(96) + b.field16(9) + b.field16(1) + [0x80 | 20, 0, 0, 0])
        b.block(6, b.field32(0) + b.field32(0x0017_9a1c) + b.field32(0x1234_5678) + b.field32(UInt32(ethernet.count))
                + b.field32(UInt32(ethernet.count)) + ethernet)
        b.block(6, b.field32(1) + b.field32(0) + b.field32(1 << 20) + b.field32(UInt32(sll2.count)) + b.field32(1500) + sll2)
        b.block(3, b.field32(UInt32(vlan.count)) + vlan)
        b.block(5, b.field32(0) + b.field32(0) + b.field32(0))          // statistics: skipped
        b.block(0x0bad_0bad, [1, 2, 3, 4, 5])                            // unknown: skipped
        return b.bytes
    }

    static var all: [[UInt8]] {
        [
            pcap(big: false, nanoseconds: false, linkType: 1, [ethernet, vlan, [0xff, 0xff]]),
            pcap(big: true, nanoseconds: true, linkType: 101, [ipv4, [0x60, 0, 0, 0]]),
            pcap(big: false, nanoseconds: true, linkType: 113, [sll]),
            pcap(big: true, nanoseconds: false, linkType: 276, [sll2]),
            pcap(big: false, nanoseconds: false, linkType: 228, [ipv4]),
            pcapngSection(big: false),
            pcapngSection(big: false) + pcapngSection(big: true),
        ]
    }

    static func write(to directory: String) {
        mkdir(directory, 0o755)
        for (index, seed) in all.enumerated() {
            let path = "\(directory)/seed-\(index)"
            guard let file = fopen(path, "wb") else { fail("cannot write \(path)") }
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
    }
}

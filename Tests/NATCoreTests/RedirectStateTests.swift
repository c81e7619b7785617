import NATTestKit
import Testing
@testable import NATCore

// Redirected connections across a restart (state file version 4): they come back and the
// proxy's replies are translated to the same bytes; files without them keep their old
// version; a damaged redirect record is refused by name.

@Suite("Redirect state")
struct RedirectStateTests {
    static let routerLAN = IPv4Bytes(192, 0, 2, 1)
    static let wallClock: UInt64 = 1_700_000_000 * 1_000_000_000

    func makeRedirecting() -> NATTranslator {
        let nat = makeTranslator { $0.redirects = [TransparentRedirect(port: 80, localPort: 3128)] }
        nat.setInterfaceAddresses([InterfaceAddress(interfaceIndex: 7, address: Self.routerLAN.address)])
        return nat
    }

    /// FNV-1a 64, written again here so the file is not checked with the code under test.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in bytes[0..<(bytes.count - 8)] { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        var out = bytes
        for i in 0..<8 { out[bytes.count - 8 + i] = UInt8(truncatingIfNeeded: hash >> (56 - 8 * UInt64(i))) }
        return out
    }

    /// A translator with one established redirected connection (and one masqueraded UDP flow), saved.
    func savedFile() -> [UInt8] {
        let nat = makeRedirecting()
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn)
        var synAck = PacketBuilder.tcp(Self.routerLAN, 3128, Net.hostA, 40000, flags: TCPFlag.syn | TCPFlag.ack)
        var udp = PacketBuilder.udp(Net.hostB, 5000, Net.remote, 53)
        _ = syn.withUnsafeMutableBytes { nat.translate($0, direction: .hairpin, checksum: PacketChecksumState(), now: t0, inputInterface: 7) }
        _ = synAck.withUnsafeMutableBytes { nat.translateRedirectReply($0, checksum: PacketChecksumState(), now: t0) }
        #expect(nat.run(&udp, .outbound) == .acceptRewritten)
        return nat.exportState(now: t0, savedAt: Self.wallClock).encoded()
    }

    @Test func redirectedConnectionsSurviveARestart() throws {
        let bytes = savedFile()
        #expect(bytes[8] == 0 && bytes[9] == 4, "a file with redirect records is version 4")
        #expect(Array(bytes[52..<56]) == [0, 0, 0, 0], "52 stays reserved")
        #expect(Array(bytes[(bytes.count - 8 - 28 - 4)..<(bytes.count - 8 - 28)]) == [0, 0, 0, 1], "one redirect record counted after the helper records")
        let snapshot = try NATStateSnapshot(decoding: bytes)
        #expect(snapshot.redirectCount == 1 && snapshot.sessionCount == 1)
        let restored = makeRedirecting()
        let summary = try restored.importState(snapshot, downtime: .seconds(30), now: at(60))
        #expect(summary.redirectsRestored == 1 && summary.redirectsNotRestored == 0 && summary.sessionsRestored == 1)
        let found = restored.originalDestination(clientAddress: Net.hostA.address, clientPort: 40000, now: at(60))
        #expect(found?.originalAddress == Net.remote.address && found?.originalPort == 80 && found?.tcpState == .established)
        #expect(found?.expiresIn == NATDuration.seconds(7440 - 30))
        var data = PacketBuilder.tcp(Self.routerLAN, 3128, Net.hostA, 40000, flags: TCPFlag.ack, payload: Array("HTTP/1.0 200 OK\r\n".utf8))
        #expect(data.withUnsafeMutableBytes { restored.translateRedirectReply($0, checksum: PacketChecksumState(), now: at(60)) } == .acceptRewritten)
        #expect(data == PacketBuilder.tcp(Net.remote, 80, Net.hostA, 40000, flags: TCPFlag.ack, payload: Array("HTTP/1.0 200 OK\r\n".utf8)))
        // Without the redirect configured any more, the record is counted and left out.
        let plain = makeTranslator()
        let without = try plain.importState(snapshot, downtime: .seconds(30), now: at(60))
        #expect(without.redirectsRestored == 0 && without.redirectsNotRestored == 1 && plain.redirectSessionCount == 0)
    }

    @Test func filesWithoutRedirectsKeepTheirVersion() throws {
        let nat = makeRedirecting()
        var udp = PacketBuilder.udp(Net.hostB, 5000, Net.remote, 53)
        #expect(nat.run(&udp, .outbound) == .acceptRewritten)
        let bytes = nat.exportState(now: t0, savedAt: Self.wallClock).encoded()
        #expect(bytes[9] == 1 && Array(bytes[52..<56]) == [0, 0, 0, 0])
        // In a version 1 or 2 file the field stays reserved: a non-zero one is refused.
        var reserved = bytes
        reserved[55] = 1
        #expect(throws: NATStateError.invalidHeader("reserved bytes are not zero")) { try NATStateSnapshot(decoding: Self.resealed(reserved)) }
    }

    @Test func damagedRedirectRecordsAreRefusedByName() {
        let bytes = savedFile()
        let record = bytes.count - 8 - 28
        func refused(_ offset: Int, _ value: [UInt8]) -> NATStateError? {
            var copy = bytes
            copy.replaceSubrange((record + offset)..<(record + offset + value.count), with: value)
            do { _ = try NATStateSnapshot(decoding: Self.resealed(copy)); return nil } catch { return error }
        }
        #expect(refused(0, [0, 0, 0, 0]) == .invalidRecord(kind: "redirect", index: 0, reason: "an address is 0"))
        #expect(refused(24, [0, 0]) == .invalidRecord(kind: "redirect", index: 0, reason: "a port is 0"))
        #expect(refused(26, [0]) == .invalidRecord(kind: "redirect", index: 0, reason: "TCP state 0"))
        #expect(refused(27, [0x80]) == .invalidRecord(kind: "redirect", index: 0, reason: "TCP flags seen 128"))
        #expect(refused(12, [0, 0, 0, 0, 0, 0, 0, 0]) == .invalidRecord(kind: "redirect", index: 0, reason: "remaining lifetime 0 ns"))
        // Every flipped byte of the record is caught (by the checksum).
        for i in record..<(bytes.count - 8) {
            var copy = bytes
            copy[i] ^= 0x01
            #expect(throws: NATStateError.checksumMismatch) { try NATStateSnapshot(decoding: copy) }
        }
        // The count says more records than the bytes hold: truncated; fewer: bytes left over.
        var more = bytes
        more[record - 1] = 2
        #expect(throws: NATStateError.truncated(length: bytes.count, expected: bytes.count + 28)) { try NATStateSnapshot(decoding: Self.resealed(more)) }
        var none = bytes
        none[record - 1] = 0
        #expect(throws: NATStateError.invalidHeader("version 4 without redirect records")) { try NATStateSnapshot(decoding: Self.resealed(none)) }
        // Version 3 has no redirect section: read as 3, the section is bytes after the end.
        var three = bytes
        three[9] = 3
        #expect(throws: NATStateError.trailingBytes(length: bytes.count, expected: bytes.count - 4 - 28)) {
            try NATStateSnapshot(decoding: three)
        }
        // Cut anywhere inside the record: truncated.
        var short = bytes
        short.removeSubrange(record..<(record + 4))
        #expect(throws: NATStateError.truncated(length: bytes.count - 4, expected: bytes.count)) { try NATStateSnapshot(decoding: short) }
    }
}

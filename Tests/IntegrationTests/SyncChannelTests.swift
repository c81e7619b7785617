@testable import Masqd
import Foundation
import NATCore
import Testing

// The sync channel without sockets or root (issue #18): SHA-256 and HMAC-SHA256 against the
// published vectors, the message decoder's drops, the anti-replay window, the key file's
// checks, and two SyncSessions exchanging a full resync, then increments, over a lossy,
// reordering "link" (SyncIncrementTests: the increments' codec, queue and ordering).

private func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

private func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite struct SyncCryptoTests {
    @Test("SHA-256 of the FIPS 180-2 examples")
    func sha256() {
        #expect(hexString(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hexString(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hexString(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A million 'a's, fed in uneven pieces (the block boundary handling).
        var h = SHA256()
        var left = 1_000_000
        var piece = 1
        while left > 0 {
            let n = min(piece, left)
            h.update([UInt8](repeating: 0x61, count: n))
            left -= n
            piece = piece * 3 % 997 + 1
        }
        #expect(hexString(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (5 is a truncated MAC, which we do not use).
    @Test("HMAC-SHA256: RFC 4231 test vectors")
    func rfc4231() {
        let aa131 = [UInt8](repeating: 0xaa, count: 131)
        let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (aa131, Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (aa131, Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (number, c) in cases.enumerated() {
            let mac = HMACSHA256(key: c.key)
            #expect(hexString(mac.authenticate(c.data)) == c.mac, "RFC 4231 case \(number)")
            #expect(mac.isValid(hex(c.mac), for: c.data))
            var wrong = hex(c.mac)
            wrong[31] ^= 1
            #expect(!mac.isValid(wrong, for: c.data))
        }
    }
}

@Suite struct SyncMessageTests {
    let mac = HMACSHA256(key: Array("0123456789abcdef0123456789abcdef".utf8))

    @Test("every kind encodes and decodes back; the header's bytes are where the format says")
    func roundTrip() throws {
        let bodies: [SyncMessage.Body] = [
            .hello(active: true, wantsResync: false), .hello(active: false, wantsResync: true),
            .increments(SyncIncrementBatch(number: 3, wallClock: 77, records: [
                SyncIncrement(kind: 3, reason: 1, flow: NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(0xC000_020A, 40000), remoteEndpoint: IPv4Endpoint(0xC633_6402, 80)),
                              externalEndpoint: IPv4Endpoint(0xCB00_7101, 1024))])),
            .incrementAck(epoch: 99, through: 4, missingTo: 9),
            .increments(SyncIncrementBatch(number: 4, wallClock: 78, records: [], helperStates: [
                SyncHelperState(flow: NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(0xC000_020A, 40000), remoteEndpoint: IPv4Endpoint(0xC633_6402, 21)), state: [1, 2, 3])])),
            .chunk(resync: 7, index: 2, count: 3, data: [1, 2, 3]),
            .ack(epoch: 99, resync: 7, received: 3),
            .nack(epoch: 99, resync: 7, from: 1, to: 2),
        ]
        for body in bodies {
            let message = SyncMessage(epoch: 0x0102030405060708, sequence: 0x1112131415161718, body: body)
            let bytes = message.encoded(with: mac)
            #expect(Array(bytes[0..<5]) == Array("MQSY".utf8) + [3])
            #expect(Array(bytes[8..<24]) == [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18])
            #expect(Int(bytes[6]) << 8 | Int(bytes[7]) == bytes.count - 24 - 32)
            // The MAC is HMAC-SHA256 of everything before it, checked with the reference MAC above.
            #expect(Array(bytes.suffix(32)) == mac.authenticate(bytes.dropLast(32)))
            #expect(SyncMessage.decode(bytes, mac: mac) == .success(message))
        }
    }

    @Test("a bad MAC, another key, a wrong length, a bad magic or kind: dropped with the reason")
    func drops() {
        let good = SyncMessage(epoch: 5, sequence: 1, body: .ack(epoch: 1, resync: 1, received: 1)).encoded(with: mac)
        var flipped = good
        flipped[20] ^= 0x80 // a payload... header byte changed on the way
        #expect(SyncMessage.decode(flipped, mac: mac) == .failure(.badHMAC))
        let otherKey = HMACSHA256(key: Array("another key of sixteen bytes or more".utf8))
        #expect(SyncMessage.decode(good, mac: otherKey) == .failure(.badHMAC))
        #expect(SyncMessage.decode(Array(good.dropLast()), mac: mac) == .failure(.wrongLength))
        #expect(SyncMessage.decode(good + [0], mac: mac) == .failure(.wrongLength))
        #expect(SyncMessage.decode([], mac: mac) == .failure(.wrongLength))
        #expect(SyncMessage.decode([UInt8](repeating: 0, count: 5000), mac: mac) == .failure(.wrongLength))
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(SyncMessage.decode(magic, mac: mac) == .failure(.malformed))
        // A kind we do not know, correctly signed: malformed, not a crash.
        var kind = Array(good.dropLast(32))
        kind[5] = 9
        #expect(SyncMessage.decode(kind + mac.authenticate(kind), mac: mac) == .failure(.malformed))
        // An ack whose payload length is a nack's, signed: wrong length for the kind.
        var short = Array(good.dropLast(32)) + [0, 0, 0, 0]
        short[7] = 20
        #expect(SyncMessage.decode(short + mac.authenticate(short), mac: mac) == .failure(.wrongLength))
        // A helper state: its record laid out as SyncHelperState.swift says; one whose length
        // is not the rest of the message, or whose reserved byte is set, signed: malformed.
        let helper = SyncHelperState(flow: NATFlow(protocolNumber: 6, internalEndpoint: IPv4Endpoint(0x0102_0304, 0x0506), remoteEndpoint: IPv4Endpoint(0x0708_090A, 0x0B0C)),
                                     state: [0xAA, 0xBB])
        let helperMessage = SyncMessage(epoch: 5, sequence: 3, body: .increments(SyncIncrementBatch(number: 1, wallClock: 2, records: [],
                                                                                                    helperStates: [helper])))
        let helperBytes = helperMessage.encoded(with: mac)
        #expect(helperBytes[5] == 7)
        #expect(Array(helperBytes[40..<58]) == [6, 0, 5, 6, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 0, 2, 0xAA, 0xBB])
        for (offset, value) in [(41, UInt8(1)), (55, 3), (55, 1)] {
            var bad = Array(helperBytes.dropLast(32))
            bad[offset] = value
            #expect(SyncMessage.decode(bad + mac.authenticate(bad), mac: mac) == .failure(.malformed), "byte \(offset) = \(value)")
        }
        // A chunk whose index is beyond its count, signed.
        let chunk = SyncMessage(epoch: 5, sequence: 2, body: .chunk(resync: 1, index: 3, count: 3, data: [0])).encoded(with: mac)
        #expect(SyncMessage.decode(chunk, mac: mac) == .failure(.malformed))
    }

    @Test("replayed and stale sequences and epochs are refused; a restarted peer (a newer epoch) starts again")
    func window() {
        var window = SyncReceiveWindow()
        #expect(window.admit(epoch: 10, sequence: 1) == .accept(newEpoch: true))
        #expect(window.admit(epoch: 10, sequence: 1) == .drop(.replayed))
        #expect(window.admit(epoch: 10, sequence: 3) == .accept(newEpoch: false))
        #expect(window.admit(epoch: 10, sequence: 2) == .accept(newEpoch: false)) // reordered, not replayed
        #expect(window.admit(epoch: 10, sequence: 2) == .drop(.replayed))
        #expect(window.admit(epoch: 10, sequence: 200) == .accept(newEpoch: false))
        #expect(window.admit(epoch: 10, sequence: 100) == .drop(.stale)) // too far behind to tell
        #expect(window.admit(epoch: 10, sequence: 137) == .accept(newEpoch: false)) // inside the 64-message window
        #expect(window.admit(epoch: 9, sequence: 500) == .drop(.stale)) // the peer's previous life
        // Once the current epoch is silent, an older one is a restart whose clock stepped back.
        var stepped = window
        #expect(stepped.admit(epoch: 3, sequence: 1, currentSilent: true) == .accept(newEpoch: true))
        #expect(stepped.admit(epoch: 10, sequence: 201, currentSilent: false) == .accept(newEpoch: true), "(a newer epoch always is)")
        #expect(stepped.admit(epoch: 3, sequence: 2, currentSilent: false) == .drop(.stale))
        #expect(window.admit(epoch: 11, sequence: 1) == .accept(newEpoch: true))
        #expect(window.admit(epoch: 10, sequence: 201) == .drop(.stale))
    }
}

@Suite struct SyncKeyTests {
    func keyFile(_ contents: String, mode: mode_t) throws -> String {
        let path = NSTemporaryDirectory() + "masqd-sync-key-\(getpid())-\(mode)-\(contents.count)"
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
        return path
    }

    @Test("a key file readable by others, too short or missing is refused with one line naming it")
    func keyChecks() throws {
        let good = try keyFile("0123456789abcdef0123\n", mode: 0o600)
        defer { unlink(good) }
        #expect(try EngineOptions.readSyncKey(good) == Array("0123456789abcdef0123".utf8))
        let open = try keyFile("0123456789abcdef0123\n", mode: 0o644)
        defer { unlink(open) }
        #expect(throws: MasqdError.self) { try EngineOptions.readSyncKey(open) }
        do { _ = try EngineOptions.readSyncKey(open) } catch {
            #expect(error.description == "--sync-key \(open): readable or writable by group or others (mode 644); chmod 600 it")
        }
        let short = try keyFile("short\n", mode: 0o600)
        defer { unlink(short) }
        do { _ = try EngineOptions.readSyncKey(short); Issue.record("a short key was accepted") } catch {
            #expect(error.description.hasPrefix("--sync-key \(short): shorter than 16 bytes"))
        }
        do { _ = try EngineOptions.readSyncKey("/nonexistent/key"); Issue.record("a missing key was accepted") } catch {
            #expect(error.description == "--sync-key /nonexistent/key: cannot read: No such file or directory")
        }
    }

    @Test("sync options come together or not at all")
    func optionsTogether() throws {
        func failure(_ arguments: [String]) -> String { OptionCheck.message(["--wan", "eth0"] + arguments) }
        #expect(failure(["--sync-peer", "192.0.2.2:7400"]).hasPrefix("--sync-listen: required with --sync-peer"))
        #expect(failure(["--sync-key", "/etc/masqd/sync.key"]) == "--sync-key /etc/masqd/sync.key: needs --sync-peer (whom to sync with)")
        #expect(failure(["--sync-peer", "192.0.2.2", "--sync-listen", "192.0.2.1:7400"])
                == "--sync-peer 192.0.2.2: expected ADDR:PORT with an IPv4 address and a port 1-65535")
        #expect(failure(["--sync-peer", "192.0.2.2:7400", "--sync-listen", "192.0.2.1:7400"]).hasPrefix("--sync-key: required with --sync-peer"))
        #expect(failure(["--role", "master"]) == "--role master: expected active or standby")
        #expect(failure(["--virtual-address", "198.51.100.300"]) == "--virtual-address 198.51.100.300: not an IPv4 address")
        let settings = try OptionCheck.settings(["--wan", "eth0", "--role", "standby", "--virtual-address", "198.51.100.1"])
        #expect(settings.role == .standby && settings.virtualAddress == IPv4Address("198.51.100.1") && settings.ha == nil)
        #expect(try OptionCheck.settings(["--wan", "eth0"]).role == .active)
    }
}

/// Two sessions joined by a simulated link that can lose, reorder and duplicate datagrams.
@Suite struct SyncSessionTests {
    static let key = Array("a shared secret of the two routers".utf8)

    struct Link {
        var toStandby: [[UInt8]] = []
        var toActive: [[UInt8]] = []
    }

    /// A state snapshot of `flows` UDP flows, encoded as the state file encodes it.
    static func encodedState(flows: Int) -> (bytes: [UInt8], snapshot: NATStateSnapshot) {
        var configuration = NATConfiguration(internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.externalAddress = IPv4Address("203.0.113.1")
        let translator = NATTranslator(configuration: configuration)
        let now = NATTime(nanoseconds: 1_000_000_000)
        for i in 0..<flows {
            var packet = udpPacket(source: 0xC000_020A, sourcePort: UInt16(20000 + i), destination: 0xC633_6402, destinationPort: 53)
            _ = packet.withUnsafeMutableBytes { translator.translate($0, direction: .outbound, checksum: PacketChecksumState(), now: now) }
        }
        let snapshot = translator.exportState(now: now, savedAt: 1_700_000_000_000_000_000)
        return (snapshot.encoded(), snapshot)
    }

    /// A minimal UDP/IPv4 packet (checksums zero: the translator accepts a zero UDP checksum).
    static func udpPacket(source: UInt32, sourcePort: UInt16, destination: UInt32, destinationPort: UInt16) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 28)
        p[0] = 0x45; p[3] = 28; p[8] = 64; p[9] = 17
        for i in 0..<4 { p[12 + i] = UInt8(truncatingIfNeeded: source >> (24 - 8 * UInt32(i))); p[16 + i] = UInt8(truncatingIfNeeded: destination >> (24 - 8 * UInt32(i))) }
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(p[i]) << 8 | UInt32(p[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        p[10] = UInt8(checksum >> 8); p[11] = UInt8(truncatingIfNeeded: checksum)
        p[20] = UInt8(sourcePort >> 8); p[21] = UInt8(truncatingIfNeeded: sourcePort)
        p[22] = UInt8(destinationPort >> 8); p[23] = UInt8(truncatingIfNeeded: destinationPort)
        p[25] = 8
        return p
    }

    /// Runs rounds of 10 ms until the standby holds a full resync; `deliver` decides each datagram's fate.
    static func run(flows: Int, rounds: Int, deliver: (Int, [UInt8]) -> [[UInt8]]) -> (received: [UInt8]?, active: SyncSession, standby: SyncSession, expected: [UInt8]) {
        let (bytes, _) = encodedState(flows: flows)
        var active = SyncSession(key: key, epoch: 100, resyncInterval: 60_000_000_000, maxChunks: 1000)
        var standby = SyncSession(key: key, epoch: 200, resyncInterval: 60_000_000_000, maxChunks: 1000)
        var link = Link()
        var received: [UInt8]?
        var counter = 0
        for round in 0..<rounds {
            let now = UInt64(1_000_000_000 + round * 10_000_000)
            if active.resyncDue(now: now, active: true) { active.startResync(bytes, now: now) }
            active.poll(now: now, active: true) { datagram in
                counter += 1
                link.toStandby += deliver(counter, datagram)
                return true
            }
            standby.poll(now: now, active: false) { link.toActive.append($0); return true }
            for datagram in link.toStandby {
                for case .snapshot(let done, let base) in standby.receive(datagram, fromPeer: true, now: now, active: false) {
                    received = done
                    _ = standby.snapshotAccepted(base: base)
                }
            }
            for datagram in link.toActive { _ = active.receive(datagram, fromPeer: true, now: now, active: true) }
            link = Link()
            if received != nil, active.outgoing.outstanding == 0 { break }
        }
        return (received, active, standby, bytes)
    }

    @Test("a full resync crosses a clean link, and the standby's ack empties the active's queue")
    func clean() throws {
        let result = Self.run(flows: 200, rounds: 50) { _, d in [d] }
        #expect(result.expected.count > 3 * SyncMessage.maxChunkData, "the test state spans several chunks")
        #expect(result.received == result.expected)
        #expect(try NATStateSnapshot(decoding: try #require(result.received)).sessionCount == 200)
        #expect(result.active.outgoing.outstanding == 0)
        #expect(result.active.counters[.resyncsSent] == 1)
        #expect(result.active.counters[.messagesResent] == 0)
        #expect(result.standby.counters.drops(.replayed) == 0)
    }

    @Test("lost, duplicated and reordered chunks: nacks and resends complete the resync; duplicates are dropped as replays")
    func lossy() throws {
        // Every 3rd datagram lost, every 5th duplicated, pairs swapped.
        var held: [UInt8]?
        let result = Self.run(flows: 300, rounds: 200) { n, d in
            if n % 3 == 0 { return [] }
            var out: [[UInt8]] = n % 5 == 0 ? [d, d] : [d]
            if let h = held { out.append(h); held = nil } else if n % 2 == 0 { held = out.removeLast() }
            return out
        }
        #expect(result.received == result.expected)
        #expect(result.active.counters[.messagesResent] > 0)
        #expect(result.standby.counters.drops(.replayed) > 0)
        #expect(result.active.outgoing.outstanding == 0)
    }

    @Test("an active with no standby listening sends only hellos; the standby's return brings a full resync")
    func absentPeer() throws {
        let (bytes, _) = Self.encodedState(flows: 100)
        var active = SyncSession(key: Self.key, epoch: 100, resyncInterval: 1_000_000_000, maxChunks: 1000)
        var standby = SyncSession(key: Self.key, epoch: 200, resyncInterval: 1_000_000_000, maxChunks: 1000)
        var kinds: [SyncMessageKind] = []
        let mac = HMACSHA256(key: Self.key)
        for round in 0..<500 { // 5 s, nobody answering
            let now = UInt64(1_000_000_000 + round * 10_000_000)
            #expect(!active.resyncDue(now: now, active: true))
            active.poll(now: now, active: true) { datagram in
                if case .success(let m) = SyncMessage.decode(datagram, mac: mac) { kinds.append(m.kind) }
                return true
            }
        }
        #expect(kinds.count == 10 && kinds.allSatisfy { $0 == .hello }, "\(kinds)")
        // The standby says hello: the next round starts a resync, and its chunks go.
        var hello: [UInt8] = []
        standby.poll(now: 6_000_000_000, active: false) { hello = $0; return true }
        _ = active.receive(hello, fromPeer: true, now: 6_000_000_000, active: true)
        #expect(active.resyncDue(now: 6_010_000_000, active: true))
        active.startResync(bytes, now: 6_010_000_000)
        var chunks = 0
        active.poll(now: 6_010_000_000, active: true) { datagram in
            if case .success(let m) = SyncMessage.decode(datagram, mac: mac), m.kind == .chunk { chunks += 1 }
            return true
        }
        #expect(chunks == active.outgoing.chunkCount && chunks > 1)
    }

    /// Found by the sync fuzzer: a nack for chunks already acknowledged made an empty range trap.
    @Test("a nack for chunks already acknowledged, or beyond the resync, changes nothing")
    func staleNack() {
        var queue = SyncResendQueue(capacity: 10)
        let started = queue.start(resync: 1, encoded: [UInt8](repeating: 1, count: 3 * SyncMessage.maxChunkData))
        #expect(started && queue.chunkCount == 3)
        _ = queue.sendDue(now: 10, after: 1_000, budget: 10) { _, _ in true }
        queue.acknowledge(resync: 1, received: 2)
        queue.resendRequested(resync: 1, from: 0, to: 1, now: 1_000_000_000)
        queue.resendRequested(resync: 1, from: 7, to: 9, now: 1_000_000_000)
        queue.resendRequested(resync: 2, from: 0, to: 2, now: 1_000_000_000)
        let none = queue.sendDue(now: 20, after: 1_000, budget: 10) { _, _ in true }
        #expect(none == (0, 0))
        queue.resendRequested(resync: 1, from: 0, to: 2, now: 1_000_000_000)
        var resent: [UInt32] = []
        let again = queue.sendDue(now: 30, after: 1_000, budget: 10) { index, _ in resent.append(index); return true }
        #expect(again == (0, 1))
        #expect(resent == [2])
        let tooLarge = queue.start(resync: 2, encoded: [UInt8](repeating: 0, count: 11 * SyncMessage.maxChunkData))
        #expect(!tooLarge && queue.resync == 1 && queue.chunkCount == 3, "over the cap: refused, the resync under way kept")
    }

    @Test("datagrams not from the peer, or signed with another key, are dropped and counted; they change nothing")
    func forged() {
        var standby = SyncSession(key: Self.key, epoch: 200, resyncInterval: 1_000_000_000, maxChunks: 1000)
        let forger = HMACSHA256(key: Array("not the shared secret, but long".utf8))
        let forged = SyncMessage(epoch: 999, sequence: 1, body: .chunk(resync: 1, index: 0, count: 1, data: [1])).encoded(with: forger)
        #expect(standby.receive(forged, fromPeer: true, now: 1, active: false).isEmpty)
        #expect(standby.receive(forged, fromPeer: false, now: 1, active: false).isEmpty)
        #expect(standby.counters.drops(.badHMAC) == 1)
        #expect(standby.counters.drops(.notPeer) == 1)
        #expect(standby.counters[.messagesReceived] == 0)
        #expect(standby.counters[.peerConnects] == 0)
    }
}

/// Increments (Sync/SyncIncrement*.swift): the codec's drops, the active's queue, the
/// standby's ordering and replay onto a resync, and two sessions streaming increments over a
/// lossy link after a full resync.
@Suite struct SyncIncrementTests {
    static let key = SyncSessionTests.key
    let mac = HMACSHA256(key: SyncSessionTests.key)

    static func record(_ n: Int, kind: UInt8 = 3) -> SyncIncrement {
        SyncIncrement(kind: kind, reason: 1, flow: NATFlow(protocolNumber: 17, internalEndpoint: IPv4Endpoint(0xC000_0200 | UInt32(n & 0xff), UInt16(1000 + n)), remoteEndpoint: IPv4Endpoint(0xC633_6402, 53)),
                      externalEndpoint: IPv4Endpoint(0xCB00_7101, UInt16(2000 + n)))
    }

    static func batch(_ number: UInt64, records: Int = 1) -> SyncIncrementBatch {
        SyncIncrementBatch(number: number, wallClock: 1_000 + number, records: (0..<records).map { record(Int(number) * 10 + $0) })
    }

    @Test("an increment record is 22 bytes where the format says; bad kinds, lengths, numbers and gap ranges are dropped")
    func codec() {
        var bytes: [UInt8] = []
        Self.record(5).encode(into: &bytes)
        #expect(bytes == [3, 1, 17, 0, 0xC0, 0, 2, 5, 0x03, 0xED, 0x07, 0xD5, 0xCB, 0, 0x71, 1, 0xC6, 0x33, 0x64, 2, 0, 53])
        #expect(SyncIncrement.decode(bytes, at: 0) == Self.record(5))
        // Address-only rows and redirects (kinds 8-11) travel as records of their own, fields as in the event.
        let redirect = NATEvent(timeNanoseconds: 7, kind: .redirectRemoved, reason: .tcpClosed, protocolNumber: 6,
                                internalAddress: 0xC000_020A, internalPort: 40000, externalAddress: 0xC000_0201, externalPort: 3128,
                                remoteAddress: 0xC633_6405, remotePort: 80)
        var esp = redirect
        esp.kind = .addressOnlyCreated; esp.reason = .outbound; esp.protocolNumber = 50
        esp.internalPort = 0; esp.externalPort = 0; esp.remotePort = 0
        for event in [redirect, esp] {
            var encoded: [UInt8] = []
            SyncIncrement(event: event)!.encode(into: &encoded)
            var back = SyncIncrement.decode(encoded, at: 0)?.event
            back?.timeNanoseconds = 7
            #expect(back == event)
        }
        var redirectBytes: [UInt8] = []
        SyncIncrement(event: redirect)!.encode(into: &redirectBytes)
        #expect(redirectBytes == [11, 17, 6, 0, 0xC0, 0, 2, 0x0A, 0x9C, 0x40, 0x0C, 0x38, 0xC0, 0, 2, 1, 0xC6, 0x33, 0x64, 5, 0, 80])
        // Port blocks are not sent: the standby rebuilds them from the mappings.
        esp.kind = .portBlockAllocated
        #expect(SyncIncrement(event: esp) == nil)
        let full = SyncMessage(epoch: 5, sequence: 1, body: .increments(SyncIncrementBatch(number: 1, wallClock: 2,
                                                                                           records: (0..<SyncMessage.maxIncrements).map { Self.record($0) })))
        let encoded = full.encoded(with: mac)
        #expect(encoded.count <= SyncMessage.maxSize && SyncMessage.maxIncrements == 54)
        #expect(SyncMessage.decode(encoded, mac: mac) == .success(full))
        func resigned(_ change: (inout [UInt8]) -> Void, _ body: SyncMessage.Body = .increments(Self.batch(1))) -> Result<SyncMessage, SyncDropReason> {
            var signed = Array(SyncMessage(epoch: 5, sequence: 1, body: body).encoded(with: mac).dropLast(32))
            change(&signed)
            return SyncMessage.decode(signed + mac.authenticate(signed), mac: mac)
        }
        #expect(resigned { $0[24 + 16] = 200 } == .failure(.malformed)) // kind 200
        #expect(resigned { $0[24 + 16] = 0 } == .failure(.malformed)) // kind 0
        #expect(resigned { $0[24 + 16 + 3] = 1 } == .failure(.malformed)) // reserved byte
        #expect(resigned { $0[24 + 7] = 0 } == .failure(.malformed)) // batch number 0
        #expect(resigned { $0.append(0); $0[7] += 1 } == .failure(.wrongLength)) // a record's length plus one
        #expect(resigned { $0.removeLast(22); $0[7] -= 22 } == .failure(.wrongLength)) // no record
        #expect(resigned({ _ in }, .incrementAck(epoch: 1, through: 5, missingTo: 5)) == .failure(.malformed))
        #expect(resigned({ _ in }, .incrementAck(epoch: 1, through: 5, missingTo: 0)) != .failure(.malformed))
        #expect(resigned({ $0[25] = 2 }, .hello(active: false, wantsResync: true)) == .failure(.malformed))
    }

    @Test("the active's queue: numbered in order, acknowledged, resent on a nack, and when full: drops what a resync holds, or overflows")
    func queue() {
        var queue = SyncIncrementQueue(capacity: 3)
        for _ in 0..<3 { #expect(queue.append([Self.record(1)], wallClock: 1, coveredThrough: 0) == .queued) }
        var sent: [UInt64] = []
        #expect(queue.sendDue(now: 10, after: 100, budget: 2) { b, _ in sent.append(b.number); return true } == (2, 0))
        #expect(queue.sendDue(now: 20, after: 100, budget: 10) { b, _ in sent.append(b.number); return true } == (1, 0))
        #expect(sent == [1, 2, 3])
        queue.acknowledge(through: 1)
        #expect(queue.outstanding == 2 && queue.firstHeld == 2)
        let held = queue.resendRequested(from: 3, to: 3, now: 1_000_000_000)
        #expect(held)
        sent = []
        #expect(queue.sendDue(now: 30, after: 100, budget: 10) { b, _ in sent.append(b.number); return true } == (0, 1))
        #expect(sent == [3])
        let gone = !queue.resendRequested(from: 1, to: 2, now: 1_000_000_000)
        #expect(gone, "batch 1 is acknowledged and gone: only a resync serves a nack for it")
        #expect(queue.sendDue(now: 130, after: 100, budget: 10) { _, _ in true } == (0, 2), "no ack within the delay: both again")
        let soon = queue.resendRequested(from: 2, to: 3, now: 140)
        #expect(soon && queue.sendDue(now: 150, after: 100, budget: 10) { _, _ in true } == (0, 0),
                "a nack within the holdoff of the last send is about the send before: nothing again")
        #expect(queue.append([Self.record(4)], wallClock: 1, coveredThrough: 0) == .queued)
        #expect(queue.append([Self.record(5)], wallClock: 1, coveredThrough: 2) == .droppedCovered)
        #expect(queue.firstHeld == 3 && queue.lastNumber == 5)
        #expect(queue.append([Self.record(6)], wallClock: 1, coveredThrough: 2) == .overflowed)
        #expect(queue.firstHeld == 6 && queue.outstanding == 1)
    }

    @Test("the standby's inbox: in order only, a gap waits and is reported, a resync replays the batches after its base")
    func inbox() {
        var inbox = SyncIncrementInbox(maxRecords: 100)
        #expect(inbox.add(Self.batch(1)).isEmpty && inbox.applied == nil, "nothing applies before the first resync")
        #expect(inbox.rebase(0).map(\.number) == [1])
        #expect(inbox.add(Self.batch(3)).isEmpty)
        #expect(inbox.gap == 2...2)
        #expect(inbox.add(Self.batch(2)).map(\.number) == [2, 3])
        #expect(inbox.add(Self.batch(2)).isEmpty, "a duplicate")
        #expect(inbox.gap == nil && inbox.applied == 3)
        // A resync exported after batch 1 arrives after batches 2 and 3 were applied to the old copy: they go again onto it.
        #expect(inbox.rebase(1).map(\.number) == [2, 3])
        #expect(!inbox.needsResync && inbox.applied == 3)
        // A newer resync than everything applied: nothing to replay; later batches follow it.
        #expect(inbox.rebase(7).isEmpty && inbox.applied == 7)
        #expect(inbox.add(Self.batch(5)).isEmpty)
        #expect(inbox.add(Self.batch(8)).map(\.number) == [8])
        // Too much waiting: dropped (a gap the active fills), never over the cap.
        var small = SyncIncrementInbox(maxRecords: 20)
        _ = small.rebase(0)
        #expect(small.add(Self.batch(2, records: 8)).isEmpty)
        #expect(small.add(Self.batch(3, records: 13)).isEmpty && small.droppedBatches == 1 && small.waitingCount == 1)
        #expect(small.gap == 1...1)
        // Kept batches are forgotten past the cap: a resync older than them cannot be brought up to date.
        #expect(small.add(Self.batch(1, records: 8)).map(\.number) == [1, 2])
        #expect(small.add(Self.batch(3, records: 8)).map(\.number) == [3])
        #expect(small.rebase(0).map(\.number) == [2, 3] && small.needsResync)
        #expect(small.rebase(3).isEmpty && !small.needsResync)
    }

    /// The active and standby over a link that loses every `loseEvery`-th datagram to the standby.
    struct Pair {
        var active = SyncSession(key: SyncIncrementTests.key, epoch: 100, resyncInterval: 60_000_000_000, maxChunks: 1000)
        var standby = SyncSession(key: SyncIncrementTests.key, epoch: 200, resyncInterval: 60_000_000_000, maxChunks: 1000)
        var delivered: [SyncDelivery] = []
        var round = 0
        var sentToStandby = 0
        var loseEvery = 0
        var now: UInt64 { UInt64(1_000_000_000 + round * 10_000_000) }

        mutating func step(state: [UInt8] = [1, 2, 3], _ work: (inout SyncSession, UInt64) -> Void = { _, _ in }) {
            round += 1
            let now = self.now
            work(&active, now)
            if active.resyncDue(now: now, active: true) { active.startResync(state, now: now) }
            var toStandby: [[UInt8]] = [], toActive: [[UInt8]] = []
            let lose = loseEvery
            var sent = sentToStandby
            active.poll(now: now, active: true) { d in sent += 1; if lose == 0 || sent % lose != 0 { toStandby.append(d) }; return true }
            sentToStandby = sent
            standby.poll(now: now, active: false) { toActive.append($0); return true }
            for d in toStandby {
                for delivery in standby.receive(d, fromPeer: true, now: now, active: false) {
                    delivered.append(delivery)
                    // As the engine does: a resync that decodes (here: one not starting with 0xff) is accepted.
                    guard case .snapshot(let data, let base) = delivery else { continue }
                    if data.first == 0xff { standby.noteSnapshotRefused() } else { delivered += standby.snapshotAccepted(base: base).map { .increments($0) } }
                }
            }
            for d in toActive { _ = active.receive(d, fromPeer: true, now: now, active: true) }
        }

        /// The resyncs' data delivered, in order.
        var snapshots: [[UInt8]] { delivered.compactMap { if case .snapshot(let data, _) = $0 { data } else { nil } } }
        /// The increment batches handed on to be applied, by number, in order.
        var batchNumbers: [UInt64] { delivered.compactMap { if case .increments(let b) = $0 { b.number } else { nil } } }
    }

    @Test("after a resync, increments stream in order over a lossy link; acks empty the active's queue; the resync came once")
    func streamed() {
        var pair = Pair()
        pair.loseEvery = 4
        for _ in 0..<100 { pair.step() } // the standby asks, the resync crosses
        #expect(pair.snapshots.first == [1, 2, 3] && !pair.standby.wantsResync)
        // 500 increments over 50 rounds, 10 a round.
        for i in 0..<50 {
            pair.step { active, now in active.queueIncrements((0..<10).map { Self.record(i * 10 + $0) }, wallClock: 7, now: now) }
        }
        for _ in 0..<200 { pair.step() }
        let records = pair.delivered.flatMap { d -> [SyncIncrement] in if case .increments(let b) = d { b.records } else { [] } }
        #expect(records == (0..<500).map { Self.record($0) }, "every increment once, in order")
        #expect(pair.active.outgoingIncrements.outstanding == 0)
        #expect(pair.active.counters[.incrementBatchesResent] > 0, "losses were made good by resends")
        #expect(pair.active.counters[.resyncsSent] == 1 && pair.active.counters[.incrementRecordsSent] == 500)
        #expect(pair.standby.counters[.incrementsReceived] >= 500)
        #expect(pair.standby.inbox.applied == pair.active.outgoingIncrements.lastNumber)
    }

    @Test("a full resync that does not decode leaves the copy and its increments as they were: batches missing before its base still come and apply in order")
    func refusedResyncKeepsTheInbox() {
        var pair = Pair()
        for _ in 0..<100 { pair.step() }
        #expect(pair.snapshots == [[1, 2, 3]])
        pair.step { active, now in active.queueIncrements([Self.record(1)], wallClock: 7, now: now) }
        // Batch 2 is lost on the way; batch 3 arrives and waits for it.
        pair.loseEvery = 1
        pair.step { active, now in active.queueIncrements([Self.record(2)], wallClock: 7, now: now) }
        pair.loseEvery = 0
        pair.step { active, now in active.queueIncrements([Self.record(3)], wallClock: 7, now: now) }
        #expect(pair.batchNumbers == [1] && pair.standby.inbox.gap == 2...2)
        // A resync that includes batches up to 3 and does not decode: the standby keeps its copy,
        // so it still needs batch 2 (then 3) on top of it, not a jump to the resync's base.
        pair.step(state: [0xff]) { active, _ in active.eventsLost() }
        for _ in 0..<100 { pair.step(state: [0xff]) }
        #expect(pair.snapshots.first { $0 == [0xff] } != nil && pair.standby.counters[.snapshotsRefused] >= 1)
        #expect(Array(pair.batchNumbers.prefix(3)) == [1, 2, 3], "batches handed on: \(pair.batchNumbers)")
        #expect(pair.standby.wantsResync) // and it asks for another
    }

    @Test("a role change starts the copy again: the standby asks for a resync, a new active sends one")
    func roleChange() {
        var pair = Pair()
        for _ in 0..<100 { pair.step() }
        #expect(pair.active.counters[.resyncsSent] == 1 && !pair.standby.wantsResync)
        pair.standby.roleChanged(active: false) // `masqd role standby` again: its copy means nothing now
        #expect(pair.standby.wantsResync)
        for _ in 0..<100 { pair.step() }
        #expect(pair.active.counters[.resyncsSent] == 2 && pair.active.counters[.resyncsRequested] == 1 && !pair.standby.wantsResync)
        pair.active.roleChanged(active: true)
        #expect(pair.active.resyncDue(now: pair.now, active: true))
    }

    @Test("lost events, or a standby behind what the active still holds, bring a full resync; its base says which increments it holds")
    func fallBackToResync() throws {
        var pair = Pair()
        for _ in 0..<100 { pair.step() }
        #expect(pair.active.counters[.resyncsSent] == 1)
        pair.step { active, _ in active.eventsLost() }
        pair.step()
        #expect(pair.active.counters[.resyncsSent] == 2 && pair.active.counters[.resyncsForLostEvents] == 1)
        // The standby misses more batches than the queue holds, so the active resyncs.
        pair.loseEvery = 1
        pair.step(state: [9]) { active, now in
            for i in 0..<(SyncSession.incrementQueueBatches + 10) { active.queueIncrements([Self.record(i)], wallClock: 7, now: now) }
        }
        #expect(pair.active.counters[.incrementQueueOverflows] == 1)
        pair.loseEvery = 0
        pair.delivered = []
        for _ in 0..<300 { pair.step(state: [9]) }
        #expect(pair.active.counters[.resyncsSent] == 3)
        #expect(pair.snapshots.contains([9]))
        #expect(pair.standby.inbox.applied == pair.active.outgoingIncrements.lastNumber)
        #expect(pair.active.outgoingIncrements.outstanding == 0)
    }
}

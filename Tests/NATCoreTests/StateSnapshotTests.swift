import NATTestKit
import Testing
@testable import NATCore

// Saving and restoring the translation state (issue #8): flows go on translating to the same
// bytes after a restore, lifetimes lose the downtime, caps and the configuration still rule,
// and a damaged or foreign file is refused whole.

private let wallClock: UInt64 = 1_700_000_000 * 1_000_000_000

/// FNV-1a 64, written here again so the tests do not check the file with the code under test.
private func fnv1a64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    var hash: UInt64 = 14_695_981_039_346_656_037
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
    return hash
}

/// `bytes` with the trailing checksum made right again (to reach the checks behind it).
private func resealed(_ bytes: [UInt8]) -> [UInt8] {
    var out = bytes
    let sum = fnv1a64(bytes[0..<(bytes.count - 8)])
    for i in 0..<8 { out[bytes.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (56 - 8 * UInt64(i))) }
    return out
}

private func decodeError(_ bytes: [UInt8]) -> NATStateError? {
    do {
        _ = try NATStateSnapshot(decoding: bytes)
        return nil
    } catch {
        return error
    }
}

/// Counts the datagrams it sees from inside in its first state byte.
final class CountingDatagramHelper: ApplicationHelper {
    let name = "count"
    func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        if context.senderIsInternal { context.state[0] &+= 1 }
        return .pass
    }
}

@Suite struct StateSnapshotTests {
    /// Runs `packet` through `nat` and returns the bytes that leave (the replacement for a helper edit).
    static func through(_ nat: NATTranslator, _ packet: [UInt8], _ direction: PacketDirection, now: NATTime,
                        expect: TranslationVerdict? = .acceptRewritten) -> [UInt8] {
        var p = packet
        let verdict = nat.run(&p, direction, now: now)
        if case .acceptReplaced(let bytes) = verdict { return Array(bytes) }
        if let expect { #expect(verdict == expect, "\(direction) verdict") }
        return p
    }

    /// A TCP connection from `host:port` to `remote:80`, established (SYN out, SYN-ACK in, ACK out).
    static func establish(_ nat: NATTranslator, _ host: IPv4Bytes, _ port: UInt16, now: NATTime = t0) -> UInt16 {
        let syn = through(nat, PacketBuilder.tcp(host, port, Net.remote, 80, flags: TCPFlag.syn, seq: 100), .outbound, now: now)
        let external = sourcePort(syn)
        _ = through(nat, PacketBuilder.tcp(Net.remote, 80, Net.external, external, flags: TCPFlag.syn | TCPFlag.ack, seq: 900, ack: 101),
                    .inbound, now: now)
        _ = through(nat, PacketBuilder.tcp(host, port, Net.remote, 80, flags: TCPFlag.ack, seq: 101, ack: 901), .outbound, now: now)
        return external
    }

    /// A translator with flows of every kind: two established TCP connections (the second
    /// could not keep its port), UDP, ICMP echo.
    static func busyTranslator(seed: UInt64 = 1) -> NATTranslator {
        let nat = makeTranslator { $0.hashSeed = seed }
        #expect(establish(nat, Net.hostA, 40000) == 40000)
        #expect(establish(nat, Net.hostB, 40000) != 40000)
        _ = through(nat, PacketBuilder.udp(Net.hostB, 5353, Net.remote, 53), .outbound, now: t0)
        _ = through(nat, PacketBuilder.icmp(Net.hostC, Net.remote, identifier: 77), .outbound, now: t0)
        #expect(nat.sessionCount == 4 && nat.mappingCount == 4)
        return nat
    }

    @Test func roundTripTranslatesTheSameFlowsToTheSameBytes() throws {
        let old = Self.busyTranslator(seed: 1)
        let saved = old.exportState(now: at(10), savedAt: wallClock)
        #expect(saved.sessionCount == 4 && saved.mappingCount == 4)
        let bytes = saved.encoded()
        let read = try NATStateSnapshot(decoding: bytes)
        #expect(read == saved)
        #expect(read.encoded() == bytes)

        // Another process: another hash seed, another monotonic clock.
        let new = makeTranslator { $0.hashSeed = 0xdead_beef }
        let later = NATTime.seconds(50)
        let summary = try new.importState(read, downtime: .seconds(5), now: later)
        #expect(summary.sessionsRestored == 4 && summary.mappingsRestored == 4 && summary.sessionsNotRestored == 0)
        #expect(new.sessionCount == 4 && new.mappingCount == 4)
        #expect(new.counters[.sessionsCreated] == 0 && new.counters[.mappingsCreated] == 0)
        // As saved at 10 s, less the 5 s down: TCP established, UDP, ICMP.
        let restored = new.snapshots(now: later)
        #expect(restored.filter { $0.protocolNumber == IPProtocolNumber.tcp }.map(\.tcpState) == [.established, .established])
        #expect(restored.map(\.expiresIn.wholeSeconds).sorted() == [45, 285, 7425, 7425])

        let outbound = [
            PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.ack | TCPFlag.psh, seq: 101, ack: 901, payload: Array("GET /\r\n".utf8)),
            PacketBuilder.tcp(Net.hostB, 40000, Net.remote, 80, flags: TCPFlag.ack, seq: 101, ack: 901, payload: Array("x".utf8)),
            PacketBuilder.udp(Net.hostB, 5353, Net.remote, 53),
            PacketBuilder.icmp(Net.hostC, Net.remote, identifier: 77, sequence: 2),
        ]
        var externalPorts: [UInt16] = []
        for packet in outbound {
            let before = Self.through(old, packet, .outbound, now: at(11))
            let after = Self.through(new, packet, .outbound, now: later)
            #expect(after == before)
            #expect(sourceAddress(after) == Net.external && Verify.ipHeaderChecksumValid(after) && Verify.transportChecksumValid(after))
            externalPorts.append(sourcePort(after))
        }
        #expect(externalPorts[0] == 40000 && externalPorts[1] != 40000)

        // Replies find their sessions: under address-and-port-dependent filtering, only a
        // restored session lets them in.
        let inbound = [
            (PacketBuilder.tcp(Net.remote, 80, Net.external, externalPorts[0], flags: TCPFlag.ack, seq: 901, ack: 108, payload: Array("hi".utf8)), Net.hostA, UInt16(40000)),
            (PacketBuilder.tcp(Net.remote, 80, Net.external, externalPorts[1], flags: TCPFlag.ack, seq: 901, ack: 102), Net.hostB, UInt16(40000)),
            (PacketBuilder.udp(Net.remote, 53, Net.external, externalPorts[2]), Net.hostB, UInt16(5353)),
            (PacketBuilder.icmp(Net.remote, Net.external, type: 0, identifier: externalPorts[3], sequence: 2), Net.hostC, UInt16(77)),
        ]
        for (packet, host, port) in inbound {
            let before = Self.through(old, packet, .inbound, now: at(11))
            let after = Self.through(new, packet, .inbound, now: later)
            #expect(after == before)
            #expect(destinationAddress(after) == host && destinationPort(after) == port)
            #expect(Verify.transportChecksumValid(after))
        }
        let tcp = new.snapshots(now: later).filter { $0.protocolNumber == IPProtocolNumber.tcp }
        #expect(tcp.count == 2 && tcp.allSatisfy { $0.tcpState == .established })
    }

    @Test func withoutTheRestoreTheRepliesAreUnmatched() {
        // The control for the round trip: a fresh translator does not let the replies in.
        let fresh = makeTranslator()
        let reply = PacketBuilder.tcp(Net.remote, 80, Net.external, 40000, flags: TCPFlag.ack, seq: 901, ack: 108)
        #expect(Self.through(fresh, reply, .inbound, now: t0, expect: .accept) == reply)
        #expect(fresh.counters[.inboundUnmatched] == 1)
    }

    @Test func lifetimesLoseTheDowntimeAndExpiredSessionsStayOut() throws {
        let old = makeTranslator()
        _ = Self.establish(old, Net.hostA, 40000)                                            // 7440 s
        _ = Self.through(old, PacketBuilder.udp(Net.hostB, 5353, Net.remote, 53), .outbound, now: t0) // 300 s
        _ = Self.through(old, PacketBuilder.tcp(Net.hostC, 41000, Net.remote, 80), .outbound, now: t0) // SYN only: 120 s
        let saved = old.exportState(now: at(100), savedAt: wallClock)
        #expect(Set(saved.sessions.map(\.lifetime.remaining)) == [.seconds(7340), .seconds(200), .seconds(20)])

        let now = NATTime.seconds(5)
        let short = makeTranslator()
        let s1 = try short.importState(saved, downtime: .seconds(19), now: now)
        #expect(s1.sessionsRestored == 3 && s1.sessionsExpired == 0)
        #expect(Set(short.snapshots(now: now).map(\.expiresIn)) == [.seconds(7321), .seconds(181), .seconds(1)])

        let long = makeTranslator()
        let s2 = try long.importState(saved, downtime: .seconds(20), now: now)
        #expect(s2.sessionsRestored == 2 && s2.sessionsExpired == 1)
        #expect(long.sessionCount == 2 && long.mappingCount == 2) // no mapping left behind for the expired one
        // The expired flow's port is free again and the host starts afresh.
        let syn = Self.through(long, PacketBuilder.tcp(Net.hostC, 41000, Net.remote, 80), .outbound, now: now)
        #expect(sourcePort(syn) == 41000 && long.counters[.sessionsCreated] == 1)

        let longer = makeTranslator()
        let s3 = try longer.importState(saved, downtime: .seconds(7340), now: now)
        #expect(s3.sessionsRestored == 0 && s3.sessionsExpired == 3 && longer.mappingCount == 0)
    }

    @Test func aShorterTimeoutNowCapsTheRestoredLifetime() throws {
        let old = makeTranslator()
        _ = Self.establish(old, Net.hostA, 40000)
        let saved = old.exportState(now: t0, savedAt: wallClock)
        let new = makeTranslator { $0.timeouts.tcpEstablished = .seconds(600) }
        _ = try new.importState(saved, downtime: .seconds(10), now: t0)
        #expect(new.snapshots(now: t0).map(\.expiresIn) == [.seconds(600)])
    }

    @Test func downtimeIsMeasuredOnTheWallClockAndOldFilesAreStale() throws {
        let saved = makeTranslator().exportState(now: t0, savedAt: wallClock) // longest timeout 7440 s
        #expect(saved.longestTimeout == .seconds(7440))
        #expect(try saved.downtime(wallClockNow: wallClock + 42_000_000_000) == .seconds(42))
        #expect(try saved.downtime(wallClockNow: wallClock - 30_000_000_000) == .seconds(0)) // a small step back
        #expect(throws: NATStateError.stale(age: .seconds(7440), longestTimeout: .seconds(7440))) {
            try saved.downtime(wallClockNow: wallClock + 7440 * 1_000_000_000)
        }
        #expect(throws: NATStateError.savedInTheFuture(by: .seconds(61))) {
            try saved.downtime(wallClockNow: wallClock - 61_000_000_000)
        }
        #expect(NATStateError.stale(age: .seconds(9000), longestTimeout: .seconds(7440)).description
                == "stale: saved 9000s ago, longer than the longest timeout (7440s)")
    }

    @Test func anotherExternalAddressIsRefusedAndChangesNothing() throws {
        let saved = Self.busyTranslator().exportState(now: t0, savedAt: wallClock)
        let moved = makeTranslator(external: IPv4Bytes(198, 51, 100, 1))
        #expect(throws: NATStateError.externalAddressChanged(saved: Net.external.address, now: IPv4Bytes(198, 51, 100, 1).address)) {
            try moved.importState(saved, downtime: .seconds(1), now: t0)
        }
        #expect(moved.sessionCount == 0 && moved.mappingCount == 0)
        #expect(NATStateError.externalAddressChanged(saved: Net.external.address, now: nil).description
                == "saved for WAN address 203.0.113.1, the WAN now has no address")
        let none = makeTranslator(external: nil)
        #expect(throws: NATStateError.externalAddressChanged(saved: Net.external.address, now: nil)) {
            try none.importState(saved, downtime: .seconds(1), now: t0)
        }
    }

    @Test func onlyAFreshTranslatorTakesAState() throws {
        let saved = Self.busyTranslator().exportState(now: t0, savedAt: wallClock)
        let used = makeTranslator()
        _ = Self.through(used, PacketBuilder.udp(Net.hostA, 1234, Net.remote, 53), .outbound, now: t0)
        #expect(throws: NATStateError.translatorNotEmpty) { try used.importState(saved, downtime: .seconds(0), now: t0) }
        #expect(used.sessionCount == 1)
    }

    @Test func emptyStateWithoutAddressRoundTrips() throws {
        let none = makeTranslator(external: nil)
        let saved = none.exportState(now: t0, savedAt: wallClock)
        #expect(saved.externalAddress == nil && saved.sessionCount == 0)
        let read = try NATStateSnapshot(decoding: saved.encoded())
        #expect(read == saved)
        #expect(try makeTranslator().importState(read, downtime: .seconds(0), now: t0) == NATStateRestoreSummary())
    }

    @Test func capsAreRespectedAndTheRestIsCounted() throws {
        let old = makeTranslator()
        for i in 0..<10 { _ = Self.through(old, PacketBuilder.udp(Net.hostA, UInt16(2000 + i), Net.remote, 53), .outbound, now: t0) }
        for i in 0..<3 { _ = Self.through(old, PacketBuilder.udp(Net.hostB, UInt16(3000 + i), Net.remote, 53), .outbound, now: t0) }
        let saved = old.exportState(now: t0, savedAt: wallClock)

        let perHost = makeTranslator { $0.maxSessionsPerHost = 4 }
        let s1 = try perHost.importState(saved, downtime: .seconds(1), now: t0)
        #expect(s1.sessionsRestored == 7 && s1.sessionsNoRoom == 6)
        #expect(perHost.sessionCount == 7 && perHost.mappingCount == 7) // refused sessions leave no mapping

        let total = makeTranslator { $0.maxSessions = 5; $0.maxMappings = 5 }
        let s2 = try total.importState(saved, downtime: .seconds(1), now: t0)
        #expect(s2.sessionsRestored == 5 && s2.sessionsNoRoom == 8 && total.sessionCount == 5 && total.mappingCount == 5)
        // Full means full: a new flow is refused as it would be without a restore.
        var extra = PacketBuilder.udp(Net.hostC, 4000, Net.remote, 53)
        #expect(total.run(&extra, .outbound, now: t0) == .drop(.mappingTableFull))
    }

    @Test func whatTheConfigurationNoLongerAllowsIsLeftOut() throws {
        let old = makeTranslator()
        _ = Self.through(old, PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53), .outbound, now: t0)  // keeps 5000
        _ = Self.through(old, PacketBuilder.udp(Net.hostB, 6000, Net.remote, 53), .outbound, now: t0)  // keeps 6000
        _ = Self.through(old, PacketBuilder.udp(Net.hostC, 7000, Net.remote, 53), .outbound, now: t0)  // keeps 7000
        let saved = old.exportState(now: t0, savedAt: wallClock)

        let new = makeTranslator(internalPrefixes: ["192.0.2.0/28"]) { // hostA..C are .10-.12: still inside
            $0.forwards = [PortForward(protocolNumber: IPProtocolNumber.udp, externalPorts: 5000...5000, internalAddress: Net.hostB.address)]
            $0.ports = PortAllocator(portRange: 1024...6500, lowPortRange: nil)
        }
        let summary = try new.importState(saved, downtime: .seconds(1), now: t0)
        // 5000 is now a forward's, 7000 outside the range: only hostB's flow comes back.
        #expect(summary.sessionsRestored == 1 && summary.sessionsNotInConfiguration == 2)
        #expect(new.snapshots(now: t0).map { "\($0.internalAddress):\($0.externalPort)" } == ["192.0.2.11:6000"])

        let outside = makeTranslator(internalPrefixes: ["192.0.2.8/31"]) // only .8 and .9
        #expect(try outside.importState(saved, downtime: .seconds(1), now: t0).sessionsNotInConfiguration == 3)
        #expect(outside.mappingCount == 0)

        // A port the router's sockets now hold (the daemon reports them before restoring) or now
        // reserves is left out too: the router's, not a LAN host's.
        let routers = makeTranslator()
        var held = LocalPortSet()
        held.insert(protocolNumber: IPProtocolNumber.udp, port: 5000)
        routers.setLocalPorts(held, reserved: 5500...6500)
        let left = try routers.importState(saved, downtime: .seconds(1), now: t0)
        #expect(left.sessionsRestored == 1 && left.sessionsNotInConfiguration == 2)
        #expect(routers.snapshots(now: t0).map { "\($0.internalAddress):\($0.externalPort)" } == ["192.0.2.12:7000"])
    }

    @Test func sessionsOfAPortForwardComeBackOnTheForwardsMapping() throws {
        let forward = PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8080...8080, internalAddress: Net.hostA.address,
                                  internalPort: 80)
        let old = makeTranslator { $0.forwards = [forward] }
        _ = Self.through(old, PacketBuilder.tcp(Net.remote, 50000, Net.external, 8080, flags: TCPFlag.syn, seq: 5), .inbound, now: t0)
        _ = Self.through(old, PacketBuilder.tcp(Net.hostA, 80, Net.remote, 50000, flags: TCPFlag.syn | TCPFlag.ack, seq: 9, ack: 6),
                         .outbound, now: t0)
        let saved = try NATStateSnapshot(decoding: old.exportState(now: t0, savedAt: wallClock).encoded())
        #expect(saved.mappings.map(\.isStatic) == [true])

        let same = makeTranslator { $0.forwards = [forward] }
        let summary = try same.importState(saved, downtime: .seconds(1), now: t0)
        #expect(summary.sessionsRestored == 1 && summary.mappingsRestored == 0 && same.mappingCount == 1)
        #expect(same.snapshots(now: t0).map(\.tcpState) == [.established])
        #expect(same.counters[.sessionsOpenedInbound] == 0)

        let moved = makeTranslator { $0.forwards = [PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8081...8081,
                                                                 internalAddress: Net.hostA.address, internalPort: 80)] }
        #expect(try moved.importState(saved, downtime: .seconds(1), now: t0).sessionsNotInConfiguration == 1)
        #expect(moved.sessionCount == 0)
        let gone = makeTranslator()
        #expect(try gone.importState(saved, downtime: .seconds(1), now: t0).sessionsNotInConfiguration == 1)
        #expect(gone.sessionCount == 0 && gone.mappingCount == 0)
    }

    /// A helper connection whose stream was edited (one byte became four): after the restore
    /// the next segment's sequence number is still shifted and the peer's ACK still mapped back.
    @Test func helperConnectionKeepsItsEditLog() throws {
        func withHelper(_ c: inout NATConfiguration) { c.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }
        let old = makeTranslator(withHelper)
        _ = Self.through(old, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.syn, seq: 1000), .outbound, now: t0)
        _ = Self.through(old, PacketBuilder.tcp(Net.remote, 21, Net.external, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 5000, ack: 1001),
                         .inbound, now: t0)
        let edited = Self.through(old, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1001,
                                                         ack: 5001, payload: Array("a@b\r\n".utf8)), .outbound, now: t0)
        #expect(FuzzRegressionTests.tcpPayload(edited) == Array("a@@@@b\r\n".utf8))
        let saved = try NATStateSnapshot(decoding: old.exportState(now: t0, savedAt: wallClock).encoded())
        #expect(saved.helperConnectionCount == 1 && saved.helperConnections[0].helperName == "grow")

        let new = makeTranslator(withHelper)
        let summary = try new.importState(saved, downtime: .seconds(1), now: t0)
        #expect(summary.sessionsRestored == 1 && summary.helperConnectionsRestored == 1 && new.helperConnectionCount == 1)
        let next = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1006, ack: 5001,
                                     payload: Array("c@\r\n".utf8))
        let ack = PacketBuilder.tcp(Net.remote, 21, Net.external, 40000, flags: TCPFlag.ack, seq: 5001, ack: 1009)
        for (packet, direction) in [(next, PacketDirection.outbound), (ack, .inbound)] {
            let before = Self.through(old, packet, direction, now: at(1))
            let after = Self.through(new, packet, direction, now: at(1))
            #expect(after == before)
            #expect(Verify.transportChecksumValid(after))
        }
        #expect(FuzzRegressionTests.sequence(Self.through(new, next, .outbound, now: at(2))) == 1009) // 1006 + 3
        #expect(FuzzRegressionTests.tcpPayload(Self.through(new, next, .outbound, now: at(2))) == Array("c@@@@\r\n".utf8))

        // Without the helper the edited stream cannot go on: not restored, and said so.
        let bare = makeTranslator()
        let refused = try bare.importState(saved, downtime: .seconds(1), now: t0)
        #expect(refused.sessionsRestored == 0 && refused.sessionsNotInConfiguration == 1)
        #expect(bare.sessionCount == 0 && bare.mappingCount == 0)
    }

    @Test func aLargeTableRoundTripsWhole() throws {
        func sized(_ c: inout NATConfiguration) { c.maxSessions = 40000; c.maxMappings = 40000 }
        let old = makeTranslator(sized)
        let hosts = (10..<30).map { IPv4Bytes(192, 0, 2, UInt8($0)) }
        for (h, host) in hosts.enumerated() {
            for i in 0..<1000 {
                var p = PacketBuilder.udp(host, UInt16(10000 + i), Net.remote, UInt16(53 + h))
                #expect(old.run(&p, .outbound, now: t0) == .acceptRewritten)
            }
        }
        #expect(old.sessionCount == 20000)
        let clock = ContinuousClock()
        var saved: NATStateSnapshot? = nil, bytes: [UInt8] = []
        let exportTime = clock.measure { saved = old.exportState(now: t0, savedAt: wallClock) }
        let encodeTime = clock.measure { bytes = saved!.encoded() }
        #expect(bytes.count == 64 + 20000 * 36)
        var read: NATStateSnapshot? = nil
        let decodeTime = try clock.measure { read = try NATStateSnapshot(decoding: bytes) }
        let new = makeTranslator(sized)
        var summary = NATStateRestoreSummary()
        let importTime = try clock.measure { summary = try new.importState(read!, downtime: .seconds(1), now: t0) }
        #expect(summary.sessionsRestored == 20000 && new.sessionCount == 20000 && new.mappingCount == 20000)
        print("20000 flows (debug build): export \(exportTime), encode \(encodeTime), decode \(decodeTime), import \(importTime)")
        for (h, host) in hosts.enumerated() where h % 7 == 0 {
            let packet = PacketBuilder.udp(host, 10999, Net.remote, UInt16(53 + h))
            #expect(Self.through(new, packet, .outbound, now: at(1)) == Self.through(old, packet, .outbound, now: at(1)))
        }
    }

    /// A small file with a record of each kind, for the corruption tests.
    static func smallFile() -> [UInt8] {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }
        _ = through(nat, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.syn, seq: 1000), .outbound, now: t0)
        _ = through(nat, PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1001, ack: 1,
                                           payload: Array("@\r\n".utf8)), .outbound, now: t0)
        _ = through(nat, PacketBuilder.udp(Net.hostB, 5353, Net.remote, 53), .outbound, now: t0)
        let bytes = nat.exportState(now: t0, savedAt: wallClock).encoded()
        #expect(bytes.count == 56 + 2 * 12 + 2 * 24 + (20 + 2 * (20 + 8 * 77 + 512) + 64) + 8)
        return bytes
    }

    @Test func everyFlippedByteIsRefused() throws {
        let bytes = Self.smallFile()
        #expect(decodeError(bytes) == nil)
        var refused = 0
        for index in 0..<bytes.count {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var damaged = bytes
                damaged[index] ^= mask
                if decodeError(damaged) != nil { refused += 1 } else { Issue.record("byte \(index) ^ \(mask) accepted") }
            }
        }
        #expect(refused == bytes.count * 3)
        // Past the magic and the version, the checksum is what catches it.
        var late = bytes
        late[200] ^= 0x10
        #expect(decodeError(late) == .checksumMismatch)
    }

    @Test func everyTruncationAndAnyExtraByteIsRefused() {
        let bytes = Self.smallFile()
        var refused = 0
        for length in 0..<bytes.count {
            let error = decodeError(Array(bytes[0..<length]))
            if case .truncated = error { refused += 1 } else { Issue.record("length \(length): \(String(describing: error))") }
        }
        #expect(refused == bytes.count)
        #expect(decodeError(bytes + [0]) == .trailingBytes(length: bytes.count + 1, expected: bytes.count))
        #expect(decodeError([]) == .truncated(length: 0, expected: 64))
    }

    @Test func foreignAndFutureFilesAreRefusedByName() {
        let bytes = Self.smallFile()
        #expect(decodeError(Array("wan: eth0\nlan: 192.168.1.0/24\n".utf8)) == .notAStateFile)
        #expect(decodeError(Array("garbage".utf8)) == .notAStateFile) // shorter than the magic, and not its start
        #expect(decodeError(Array("MASQ".utf8)) == .truncated(length: 4, expected: 64))
        var future = bytes
        future[9] = 5
        #expect(decodeError(future) == .unsupportedVersion(5))
        #expect(NATStateError.unsupportedVersion(5).description == "format version 5; this masqd reads versions 1-4")
        var zero = bytes
        zero[9] = 0
        #expect(decodeError(zero) == .unsupportedVersion(0))
    }

    /// Version 1 files (before datagram helpers) still read; in them a UDP session with a
    /// helper connection is refused by name.
    @Test func versionOneFilesStillRead() throws {
        var bytes = Self.smallFile()
        // No UDP flow has a helper here: written as version 1, as the masqd before version 2 reads.
        #expect(bytes[8] == 0 && bytes[9] == 1)
        let snapshot = try NATStateSnapshot(decoding: resealed(bytes))
        #expect(snapshot.sessionCount == 2 && snapshot.helperConnectionCount == 1)
        // The UDP session (second record, at 104) pointing at a helper record: only version 2 has those.
        bytes.replaceSubrange((104 + 20)..<(104 + 24), with: [0, 0, 0, 0])
        bytes.replaceSubrange((80 + 20)..<(80 + 24), with: [0xff, 0xff, 0xff, 0xff])
        #expect(decodeError(resealed(bytes)).map { "\($0)" } == "bad session record 1: helper connection 0 of 1")
        bytes[9] = 2
        #expect(try NATStateSnapshot(decoding: resealed(bytes)).helperConnectionCount == 1)
        // A version 2 file with no datagram helper record is not one masqd writes (it would
        // encode back as version 1): refused.
        var plain = Self.smallFile()
        plain[9] = 2
        #expect(decodeError(resealed(plain)) == .invalidHeader("version 2 without a datagram helper record"))
    }

    /// A UDP flow with a datagram helper keeps its helper's state bytes across a restart.
    @Test func datagramHelperStateRoundTrips() throws {
        func withHelper(_ c: inout NATConfiguration) { c.helpers = [HelperRegistration(helper: CountingDatagramHelper(), ports: [.udp(5000)])] }
        let old = makeTranslator(withHelper)
        for _ in 0..<3 { _ = Self.through(old, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000), .outbound, now: t0) }
        let encoded = old.exportState(now: t0, savedAt: wallClock).encoded()
        #expect(encoded[8] == 0 && encoded[9] == 2) // a UDP flow with a helper record needs version 2
        let saved = try NATStateSnapshot(decoding: encoded)
        #expect(saved.helperConnectionCount == 1 && saved.helperConnections[0].helperName == "count")
        #expect(saved.helperConnections[0].state[0] == 3)
        let new = makeTranslator(withHelper)
        let summary = try new.importState(saved, downtime: .seconds(1), now: t0)
        #expect(summary.sessionsRestored == 1 && summary.helperConnectionsRestored == 1 && new.helperConnectionCount == 1)
        _ = Self.through(new, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 5000), .outbound, now: at(1))
        let again = new.exportState(now: at(1), savedAt: wallClock)
        #expect(again.helperConnections[0].state[0] == 4)
    }

    /// Values the checksum vouches for but the translator could not hold: each refused with
    /// the field named. Offsets: header 56, mapping records (12) from 56, sessions (24) from 80.
    @Test(arguments: [
        (12, [9], "helper layout 9 edits"),                                 // another build's edit log
        (28, [0, 0, 0, 1], "reserved"),                                     // header reserved word
        (32, [0, 0, 0, 0, 0, 0, 0, 0], "longest timeout is 0"),
        (24, [0, 0, 0, 0], "no external address"),
        (56 + 8, [47], "protocol 47"),                                       // first mapping: GRE has no ports
        (56 + 9, [2], "unknown flags"),
        (56 + 10, [0, 1], "reserved bytes set"),
        (56 + 4, [0, 0], "port 0"),
        (80, [0, 0, 0, 9], "mapping 9 of 2"),                               // first session's mapping index
        (80 + 8, [0, 0, 0, 0, 0, 0, 0, 0], "remaining lifetime 0"),
        (80 + 8, [0xff, 0, 0, 0, 0, 0, 0, 0], "remaining lifetime"),
        (80 + 18, [9], "TCP state 9"),
        (80 + 19, [8], "flags 8"),
        (80 + 20, [0, 0, 0, 5], "helper connection 5 of 1"),
        (104 + 20, [0, 0, 0, 0], "helper connection 0 of 1"),               // the UDP session in a version 1 file
        (104, [0, 0, 0, 0], "TCP state 0"),                                 // the UDP session on the TCP mapping
        (128, [0x41, 0x00, 0x42], "helper name"),
        (128 + 20 + 12, [0x02, 0x01], "held bytes, room for"),
        (128 + 20 + 17, [9], "9 edits"),
        (128 + 20 + 20 + 8, [0x7f], "out of order or inconsistent"),       // first edit's delta
        (128 + 20 + 20 + 104 + 10, [0x55], "bytes after replacement 0 not zero"),
        // Issue #20 item 9: 3 held bytes put the held range at 1001..<1004, inside the edit
        // of 1001..<1002; the packet path only ever logs edits before the held bytes.
        (128 + 20 + 12, [0x00, 0x03], "edit 0 ends among the held bytes"),
    ] as [(Int, [UInt8], String)])
    func outOfRangeValuesAreRefusedByName(offset: Int, patch: [UInt8], expected: String) {
        var bytes = Self.smallFile()
        bytes.replaceSubrange(offset..<(offset + patch.count), with: patch)
        let error = decodeError(resealed(bytes))
        let text = error.map { "\($0)" } ?? "accepted"
        #expect(expected.split(separator: "|").contains { text.contains($0) }, "\(text)")
        #expect(error != .checksumMismatch)
    }
}

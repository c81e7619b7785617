import NATTestKit
import Testing
@testable import NATCore

/// Blind RST/FIN (issue #20 item 2, TCPWindowTracking.swift): a remote RST or FIN changes the
/// session only inside the window the internal host announced, an RST only at the expected
/// sequence number, and no SYN/FIN/RST with a wrong final checksum changes anything. Ignored
/// packets are still translated (checked byte for byte, checksums by the reference sum).
@Suite struct TCPWindowTests {
    // The inside host's ISN 1000, window scale 7; the remote's ISN 5000, scale 8. After the
    // handshake the inside host acknowledges 5001 with a window field of 502: 64256 bytes.
    static let insideISN: UInt32 = 1000
    static let remoteISN: UInt32 = 5000
    static let expected: UInt32 = remoteISN + 1
    static let window = 502 << 7

    /// NOP, window scale `shift` (RFC 7323: kind 3, length 3), 4 bytes.
    static func scale(_ shift: UInt8) -> [UInt8] { [1, 3, 3, shift] }

    static func out(_ flags: UInt8, seq: UInt32 = insideISN + 1, ack: UInt32 = expected, window: UInt16 = 502,
                    options: [UInt8] = []) -> [UInt8] {
        PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 443, flags: flags, seq: seq, ack: ack, window: window, options: options)
    }

    static func inb(_ flags: UInt8, seq: UInt32 = expected, ack: UInt32 = insideISN + 1, payload: [UInt8] = [],
                    checksum: L4Checksum = .valid, options: [UInt8] = []) -> [UInt8] {
        PacketBuilder.tcp(Net.remote, 443, Net.external, 40000, flags: flags, seq: seq, ack: ack, window: 1000,
                          options: options, payload: payload, checksum: checksum)
    }

    /// A translator with one established session through the full handshake.
    static func established() -> NATTranslator {
        let nat = makeTranslator()
        var syn = out(TCPFlag.syn, seq: insideISN, ack: 0, window: 64240, options: scale(7))
        #expect(nat.run(&syn, .outbound) == .acceptRewritten)
        var synAck = inb(TCPFlag.syn | TCPFlag.ack, seq: remoteISN, options: scale(8))
        #expect(nat.run(&synAck, .inbound) == .acceptRewritten)
        var ack = out(TCPFlag.ack)
        #expect(nat.run(&ack, .outbound) == .acceptRewritten)
        #expect(state(nat) == .established)
        return nat
    }

    static func state(_ nat: NATTranslator, _ now: NATTime = t0) -> TCPSessionState? { nat.snapshots(now: now).first?.tcpState }

    /// Sends `packet` inbound at `now`; it must be translated to hostA:40000 whatever the
    /// judgement, with its checksum as valid (or as broken) as it came.
    @discardableResult
    static func deliver(_ nat: NATTranslator, _ packet: [UInt8], now: NATTime = at(1), notReady: Bool = false) -> [UInt8] {
        var p = packet
        #expect(nat.run(&p, .inbound, notReady: notReady, now: now) == .acceptRewritten)
        #expect(destinationAddress(p) == Net.hostA && destinationPort(p) == 40000)
        #expect(Array(p[24..<28]) == Array(packet[24..<28]) && Array(p[28..<32]) == Array(packet[28..<32]), "seq and ack untouched")
        if !notReady { #expect(Verify.transportChecksumValid(p) == Verify.transportChecksumValid(packet)) }
        return p
    }

    @Test func anExactRSTEndsTheSession() {
        let nat = Self.established()
        Self.deliver(nat, Self.inb(TCPFlag.rst | TCPFlag.ack))
        #expect(Self.state(nat) == .reset)
        #expect(nat.snapshots(now: at(1)).first?.expiresIn == .seconds(10))
        #expect(nat.counters[.ignoredRSTOutOfWindow] == 0 && nat.counters[.ignoredRSTInWindow] == 0 && nat.counters[.ignoredBadChecksum] == 0)
    }

    @Test(arguments: [UInt32(1) << 31, UInt32(TCPWindowTests.window) + 1, UInt32.max]) // far ahead, just past, just behind
    func anRSTOutsideTheWindowChangesNothing(offset: UInt32) {
        let nat = Self.established()
        let before = nat.snapshots(now: at(1)).first?.expiresIn
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: Self.expected &+ offset), now: at(1))
        #expect(Self.state(nat) == .established)
        #expect(nat.snapshots(now: at(1)).first?.expiresIn == before, "an ignored packet does not refresh the timer")
        #expect(nat.counters[.ignoredRSTOutOfWindow] == 1)
        // The session goes on: the real RST still works.
        Self.deliver(nat, Self.inb(TCPFlag.rst), now: at(2))
        #expect(Self.state(nat) == .reset)
    }

    /// RFC 5961: inside the window but not exact, the host sends a challenge ACK; the session
    /// stays. The window is the scaled one: 60000 is beyond the field (502) but inside 502 << 7.
    @Test(arguments: [UInt32(1), 60000, UInt32(TCPWindowTests.window)])
    func anInexactRSTInsideTheScaledWindowIsLeftToTheHost(offset: UInt32) {
        let nat = Self.established()
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: Self.expected + offset))
        #expect(Self.state(nat) == .established)
        #expect(nat.counters[.ignoredRSTInWindow] == 1 && nat.counters[.ignoredRSTOutOfWindow] == 0)
    }

    @Test func anRSTWithABadChecksumChangesNothingAndIsForwardedAsItCame() {
        let nat = Self.established()
        let good = Self.inb(TCPFlag.rst)
        let field = UInt16(good[36]) << 8 | UInt16(good[37])
        let bad = Self.inb(TCPFlag.rst, checksum: .raw(field ^ 0x5555))
        #expect(!Verify.transportChecksumValid(bad))
        let sent = Self.deliver(nat, bad)
        #expect(!Verify.transportChecksumValid(sent) && Verify.ipHeaderChecksumValid(sent))
        #expect(Self.state(nat) == .established)
        #expect(nat.counters[.ignoredBadChecksum] == 1)
        // Not-final checksums (CHECKSUM_PARTIAL from a local stack) are not judged.
        Self.deliver(nat, Self.inb(TCPFlag.rst, checksum: .notReady), notReady: true)
        #expect(Self.state(nat) == .reset)
        #expect(nat.counters[.ignoredBadChecksum] == 1)
    }

    /// A SYN with a wrong checksum still opens its session as any forwarded packet does (the
    /// fuzzer's invariant: a translated packet has a live session), with its first lifetime,
    /// but teaches nothing: the window scale it offers is not taken.
    @Test func aBadChecksumSYNOpensASessionButChangesNoState() {
        let nat = makeTranslator()
        let good = Self.out(TCPFlag.syn, seq: Self.insideISN, ack: 0, options: Self.scale(7))
        var bad = good
        bad[36] ^= 0x10 // TCP checksum field
        #expect(!Verify.transportChecksumValid(bad))
        #expect(nat.run(&bad, .outbound) == .acceptRewritten)
        #expect(sourceAddress(bad) == Net.external && !Verify.transportChecksumValid(bad))
        #expect(nat.counters[.ignoredBadChecksum] == 1)
        let opening = nat.configuration.timeouts.timeout(protocolNumber: IPProtocolNumber.tcp, tcpState: .opening)
        #expect(nat.snapshots(now: t0).map(\.expiresIn) == [opening])
        #expect(nat.sessions[0].tcpWindow.flags == 0)
    }

    @Test func aFINInsideTheWindowClosesAndOneOutsideDoesNot() {
        let nat = Self.established()
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, seq: Self.expected + 70_000, payload: Array("x".utf8)))
        #expect(Self.state(nat) == .established)
        #expect(nat.counters[.ignoredFINOutOfWindow] == 1)
        // A FIN whose checksum is wrong, though in the window.
        let good = Self.inb(TCPFlag.fin | TCPFlag.ack)
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, checksum: .raw((UInt16(good[36]) << 8 | UInt16(good[37])) ^ 1)))
        #expect(Self.state(nat) == .established && nat.counters[.ignoredBadChecksum] == 1)
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, seq: Self.expected + 100, payload: Array("bye".utf8)))
        #expect(Self.state(nat) == .closing)
        #expect(nat.counters[.ignoredFINOutOfWindow] == 1)
    }

    /// conntrack's "RST train": data then an RST right behind it, before the host's ACK.
    @Test func anRSTRightBehindTheRemotesDataIsExact() {
        let nat = Self.established()
        Self.deliver(nat, Self.inb(TCPFlag.ack | TCPFlag.psh, payload: Array(repeating: 0x41, count: 100)))
        Self.deliver(nat, Self.inb(TCPFlag.rst | TCPFlag.ack, seq: Self.expected + 100))
        #expect(Self.state(nat) == .reset)
    }

    /// Out-of-window data does not move what the next RST is compared with.
    @Test func dataOutsideTheWindowTeachesNothing() {
        let nat = Self.established()
        Self.deliver(nat, Self.inb(TCPFlag.ack | TCPFlag.psh, seq: Self.expected &+ (1 << 31), payload: Array("forged".utf8)))
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: Self.expected &+ (1 << 31) &+ 6))
        #expect(Self.state(nat) == .established)
        #expect(nat.counters[.ignoredRSTOutOfWindow] == 1)
    }

    /// Connection refused: the RST answering the inside SYN must acknowledge it (RFC 793).
    @Test func anRSTAnsweringTheSYNMustAcknowledgeIt() {
        let nat = makeTranslator()
        var syn = Self.out(TCPFlag.syn, seq: Self.insideISN, ack: 0)
        #expect(nat.run(&syn, .outbound) == .acceptRewritten)
        Self.deliver(nat, Self.inb(TCPFlag.rst | TCPFlag.ack, seq: 0, ack: 77))
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: 0, ack: 0))
        #expect(Self.state(nat) == .opening && nat.counters[.ignoredRSTOutOfWindow] == 2)
        Self.deliver(nat, Self.inb(TCPFlag.rst | TCPFlag.ack, seq: 0, ack: Self.insideISN + 1))
        #expect(Self.state(nat) == .reset)
    }

    /// Without the SYNs (picked up mid-stream) the scale is unknown: 65535 bytes.
    @Test func midStreamTheWindowIsTheUnscaledMaximum() {
        let nat = makeTranslator()
        var ack = Self.out(TCPFlag.ack, window: 4)
        #expect(nat.run(&ack, .outbound) == .acceptRewritten)
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: Self.expected + 65536))
        #expect(nat.counters[.ignoredRSTOutOfWindow] == 1)
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, seq: Self.expected + 65000))
        #expect(Self.state(nat) == .closing)
    }

    /// The window is relearned after a restore, not saved; until the inside host speaks, a
    /// remote RST or FIN cannot end the restored session.
    @Test func aRestoredSessionRefusesRSTUntilTheInsideHostSpeaks() throws {
        let nat = Self.established()
        let snapshot = nat.exportState(now: at(1), savedAt: 1)
        let fresh = makeTranslator()
        _ = try fresh.importState(try NATStateSnapshot(decoding: snapshot.encoded()), downtime: .seconds(0), now: at(2))
        #expect(Self.state(fresh, at(2)) == .established)
        Self.deliver(fresh, Self.inb(TCPFlag.rst), now: at(3))
        Self.deliver(fresh, Self.inb(TCPFlag.fin | TCPFlag.ack), now: at(3))
        #expect(Self.state(fresh, at(3)) == .established)
        #expect(fresh.counters[.ignoredRSTOutOfWindow] == 1 && fresh.counters[.ignoredFINOutOfWindow] == 1)
        // Data from the remote still flows on the restored session.
        Self.deliver(fresh, Self.inb(TCPFlag.ack | TCPFlag.psh, payload: Array("hi".utf8)), now: at(3))
        var ack = Self.out(TCPFlag.ack, ack: Self.expected + 2)
        #expect(fresh.run(&ack, .outbound, now: at(4)) == .acceptRewritten)
        Self.deliver(fresh, Self.inb(TCPFlag.rst, seq: Self.expected + 2), now: at(5))
        #expect(Self.state(fresh, at(5)) == .reset)
    }

    @Test func theWindowScaleOptionIsReadSafely() {
        func offer(_ options: [UInt8]) -> UInt8? {
            var p = PacketBuilder.tcp(Net.hostA, 1, Net.remote, 2, options: options)
            return p.withUnsafeMutableBytes { TCPWindowTracking.scaleOffer(TCPHeader(unchecked: $0.baseAddress! + 20)) }
        }
        #expect(offer([]) == nil)
        #expect(offer(Self.scale(7)) == 7)
        #expect(offer([1, 3, 3, 200]) == 14) // capped (RFC 7323 2.3)
        #expect(offer([2, 4, 5, 0xb4] + Self.scale(2)) == 2) // after an MSS option
        #expect(offer([0, 3, 3, 7]) == nil) // end of options first
        #expect(offer([2, 0, 3, 3]) == nil) // a zero length: malformed, read no further
        #expect(offer([1, 1, 3, 4]) == nil) // a length running past the options
        #expect(MemoryLayout<Session>.stride == 56)
    }

    /// What the fast path's BPF program recorded of an offloaded stretch (#16), handed to the
    /// core when a remote FIN or RST comes back to the engine: hostA:40000 with the remote:443.
    static func resync(_ nat: NATTranslator, ack: UInt32, remoteEnd: UInt32?) {
        nat.fastPathResyncTCPWindow(internalAddress: 0xC000_020A, internalPort: 40000, remoteAddress: 0xCB00_7102, remotePort: 443,
                                    internalAcknowledged: ack, internalWindow: 502, remoteEnd: remoteEnd)
    }

    /// 10 MB went through the kernel: the engine's window is 10 MB behind the remote's FIN,
    /// which alone is out of window; after the kernel's record (the inside host acknowledged it
    /// all) it closes. An older record never moves the window back.
    @Test func aFINAfterAnOffloadedStretchIsJudgedOnTheKernelsRecord() {
        let nat = Self.established()
        let far = Self.expected &+ 10_000_000
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, seq: far))
        #expect(Self.state(nat) == .established && nat.counters[.ignoredFINOutOfWindow] == 1)
        Self.resync(nat, ack: far, remoteEnd: far)
        Self.resync(nat, ack: Self.expected, remoteEnd: Self.expected)
        Self.deliver(nat, Self.inb(TCPFlag.fin | TCPFlag.ack, seq: far))
        #expect(Self.state(nat) == .closing && nat.counters[.ignoredFINOutOfWindow] == 1)
    }

    /// An RST right behind the remote's last offloaded segment (not yet acknowledged) is
    /// exact; one a byte further, inside the window, is left to the host (RFC 5961).
    @Test func anRSTAfterAnOffloadedStretchIsExactAtTheRecordedEnd() {
        let nat = Self.established()
        let acked = Self.expected &+ 5_000_000, end = acked &+ 1448
        Self.resync(nat, ack: acked, remoteEnd: end)
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: end &+ 1))
        #expect(Self.state(nat) == .established && nat.counters[.ignoredRSTInWindow] == 1 && nat.counters[.ignoredRSTOutOfWindow] == 0)
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: end))
        #expect(Self.state(nat) == .reset && nat.counters[.ignoredRSTInWindow] == 1)
    }

    /// A record for a session the core does not have changes nothing (and does not crash).
    @Test func aRecordForNoSessionIsIgnored() {
        let nat = Self.established()
        nat.fastPathResyncTCPWindow(internalAddress: 0xC000_020B, internalPort: 40000, remoteAddress: 0xCB00_7102, remotePort: 443,
                                    internalAcknowledged: 1, internalWindow: 1, remoteEnd: nil)
        Self.deliver(nat, Self.inb(TCPFlag.rst, seq: Self.expected &+ 5_000_000))
        #expect(Self.state(nat) == .established && nat.counters[.ignoredRSTOutOfWindow] == 1)
    }
}

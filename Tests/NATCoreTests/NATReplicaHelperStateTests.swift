import NATTestKit
import Testing
@testable import NATCore

// A helper connection's state as an HA increment (NATTranslator-HelperState.swift,
// NATStateSnapshot-HelperState.swift, NATReplica.applyHelperState): a connection made after
// the resync, whose stream a helper edited (one byte became four), goes on in a translator
// restored from the standby's copy exactly as in the active — its next segment shifted by the
// edit, the peer's ACK mapped back, a retransmission of the edited bytes rebuilt — even though
// the state was read before more bytes flowed.

@Suite("HA replica: helper state")
struct NATReplicaHelperStateTests {
    static func withHelper(_ c: inout NATConfiguration) { c.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }

    static let syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.syn, seq: 1000)
    static let synAck = PacketBuilder.tcp(Net.remote, 21, Net.external, 40000, flags: TCPFlag.syn | TCPFlag.ack, seq: 5000, ack: 1001)
    static let edited = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1001, ack: 5001,
                                          payload: Array("a@b\r\n".utf8))
    static let plain = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1006, ack: 5001,
                                         payload: Array("cd\r\n".utf8))

    /// The active after the handshake, the edited segment and a plain one; the standby's copy
    /// (an empty resync, the events applied, the helper state read right after the edit when
    /// `helperState`).
    static func replicate(helperState: Bool) -> (active: NATTranslator, copy: NATStateSnapshot, helperEvents: Int) {
        let active = makeTranslator(withHelper)
        active.enableEvents(capacity: 1024, now: t0)
        active.recordsEstablishedSessions = true
        active.recordsHelperStateChanges = true
        var replica = NATReplica(active.exportState(now: t0, savedAt: NATReplicaTests.wall(t0)))
        let configuration = active.configuration
        var helperEvents = 0
        func apply() {
            for event in NATReplicaTests.drain(active) {
                if event.kind == .helperStateChanged {
                    helperEvents += 1
                    guard helperState, case .found(let bytes)? = active.helperState(of: event, maxBytes: 1180) else { continue }
                    let applied = replica.applyHelperState(event, state: bytes, wallClock: NATReplicaTests.wall(at(1)))
                    #expect(applied)
                } else {
                    replica.apply(event, wallClock: NATReplicaTests.wall(at(1)), configuration: configuration)
                }
            }
        }
        _ = StateSnapshotTests.through(active, syn, .outbound, now: at(1))
        _ = StateSnapshotTests.through(active, synAck, .inbound, now: at(1))
        let out = StateSnapshotTests.through(active, edited, .outbound, now: at(1))
        #expect(FuzzRegressionTests.tcpPayload(out) == Array("a@@@@b\r\n".utf8))
        apply()
        _ = StateSnapshotTests.through(active, plain, .outbound, now: at(1)) // no edit, no state change: no event
        apply()
        return (active, replica.snapshot(savedAt: NATReplicaTests.wall(at(2)), minimumRemaining: .seconds(60)), helperEvents)
    }

    @Test func anEditedConnectionGoesOnFromTheCopy() throws {
        let (active, copy, helperEvents) = Self.replicate(helperState: true)
        #expect(helperEvents == 1)
        #expect(copy.sessionCount == 1 && copy.helperConnectionCount == 1)
        let standby = makeTranslator(Self.withHelper)
        let summary = try standby.importState(copy, downtime: .seconds(1), now: at(2))
        #expect(summary.sessionsRestored == 1 && summary.helperConnectionsRestored == 1)

        let next = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1010, ack: 5001,
                                     payload: Array("e@\r\n".utf8))
        let ack = PacketBuilder.tcp(Net.remote, 21, Net.external, 40000, flags: TCPFlag.ack, seq: 5001, ack: 1013)
        for (packet, direction) in [(next, PacketDirection.outbound), (ack, .inbound), (Self.edited, .outbound)] {
            let truth = StateSnapshotTests.through(active, packet, direction, now: at(3))
            let got = StateSnapshotTests.through(standby, packet, direction, now: at(3))
            #expect(got == truth, "\(direction) segment differs from the active's")
            #expect(Verify.transportChecksumValid(got))
        }
        let sent = StateSnapshotTests.through(standby, next, .outbound, now: at(4))
        #expect(FuzzRegressionTests.sequence(sent) == 1013) // 1010 + 3: the edit's shift
        #expect(FuzzRegressionTests.tcpPayload(sent) == Array("e@@@@\r\n".utf8))
        let acked = StateSnapshotTests.through(standby, ack, .inbound, now: at(4))
        #expect(FuzzRegressionTests.sequence(acked) == 5001)
        let ihl = Verify.headerLength(acked)
        #expect(UInt32(Verify.be16(acked, ihl + 8)) << 16 | UInt32(Verify.be16(acked, ihl + 10)) == 1010) // 1013 - 3
    }

    /// Without the helper state (before it was replicated) the copy's connection goes on unshifted: wrong.
    @Test func withoutTheHelperStateTheNumbersAreWrong() throws {
        let (_, copy, _) = Self.replicate(helperState: false)
        #expect(copy.sessionCount == 1 && copy.helperConnectionCount == 0)
        let standby = makeTranslator(Self.withHelper)
        _ = try standby.importState(copy, downtime: .seconds(1), now: at(2))
        let next = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh, seq: 1010, ack: 5001,
                                     payload: Array("e\r\n".utf8))
        #expect(FuzzRegressionTests.sequence(StateSnapshotTests.through(standby, next, .outbound, now: at(3))) == 1010)
    }

    /// The encoding: acknowledged edits folded into the base delta, everything else back as it was.
    @Test func theEncodingRoundTrips() {
        let edit = NATStateSnapshot.EditRecord(start: 10, end: 11, cumulativeDelta: 3, replacement: Array("@@@@".utf8))
        let later = NATStateSnapshot.EditRecord(start: 20, end: 21, cumulativeDelta: 6, replacement: Array("@@@@".utf8))
        let stream = NATStateSnapshot.StreamRecord(nextSequence: 30, acknowledged: 15, baseDelta: 0, started: true, acknowledgedSeen: true,
                                                   heldRetransmissions: 0, edits: [edit, later], held: [])
        let record = NATStateSnapshot.HelperRecord(helperName: "grow", clientIsInternal: true,
                                                   streams: [stream, .init()], state: (0..<64).map { UInt8($0) })
        let bytes = record.syncEncoded()
        #expect(bytes.count == 1 + 4 + 1 + (14 + 13 + 4) + 14 + 64)
        var folded = stream
        folded.baseDelta = 3
        folded.edits = [later]
        #expect(NATStateSnapshot.HelperRecord(syncEncoded: bytes) == .init(helperName: "grow", clientIsInternal: true,
                                                                           streams: [folded, .init()], state: record.state))
        // Not exactly one record: refused.
        #expect(NATStateSnapshot.HelperRecord(syncEncoded: bytes + [0]) == nil)
        #expect(NATStateSnapshot.HelperRecord(syncEncoded: Array(bytes.dropLast())) == nil)
        var badName = bytes
        badName[0] = 17
        #expect(NATStateSnapshot.HelperRecord(syncEncoded: badName) == nil)
        #expect(NATStateSnapshot.HelperRecord(syncEncoded: []) == nil)
    }
}

import NATTestKit
import Testing
@testable import NATCore

// The HA standby's copy (NATReplica.swift): a full resync with the active's later events
// applied holds the same flows as the active (same external address and port, TCP state),
// and restored into a fresh translator it answers the active's flows and allocates no port
// they hold.

@Suite("HA replica")
struct NATReplicaTests {
    /// The active's wall clock at t0 (ns since 1970).
    static let wall0: UInt64 = 1_700_000_000_000_000_000

    static func wall(_ time: NATTime) -> UInt64 { wall0 + (time.nanoseconds - t0.nanoseconds) }

    /// Every flow of a snapshot as one comparable line: tuple, external address index and port, TCP state.
    static func flows(_ s: NATStateSnapshot) -> [String] {
        s.sessions.map { r in
            let m = s.mappings[r.mapping]
            return "\(m.protocolNumber) \(m.internalEndpoint.address.value):\(m.internalEndpoint.port) -> \(r.remoteEndpoint.address.value):\(r.remoteEndpoint.port) via \(m.externalIndex):\(m.externalPort) \(r.lifetime.tcpState)"
        }.sorted()
    }

    static func drain(_ nat: NATTranslator) -> [NATEvent] {
        var all: [NATEvent] = []
        nat.drainEvents { all.append($0) }
        return all
    }

    static func out(_ nat: NATTranslator, _ packet: [UInt8], now: NATTime) -> [UInt8] {
        var p = packet
        #expect(nat.run(&p, .outbound, now: now) == .acceptRewritten)
        return p
    }

    /// The active's traffic: two flows before the resync (UDP, a TCP SYN never answered), then
    /// new flows (a TCP one completing its handshake, a UDP one), and the first two expiring.
    static func replicate(_ configure: @escaping (inout NATConfiguration) -> Void = { _ in })
        -> (active: NATTranslator, replica: NATReplica, configuration: NATConfiguration) {
        let active = makeTranslator(configure)
        active.enableEvents(capacity: 1024, now: t0)
        active.recordsEstablishedSessions = true
        _ = out(active, PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53), now: t0)
        _ = out(active, PacketBuilder.tcp(Net.hostA, 40001, Net.remote, 80), now: t0)
        let resync = active.exportState(now: at(1), savedAt: wall(at(1)))
        _ = drain(active) // the events before the resync: it holds them
        var replica = NATReplica(resync)
        let tcp = out(active, PacketBuilder.tcp(Net.hostB, 40002, Net.remote, 80), now: at(100))
        var synAck = PacketBuilder.tcp(Net.remote, 80, IPv4Bytes(bytes: Array(tcp[12..<16])), sourcePort(tcp),
                                       flags: TCPFlag.syn | TCPFlag.ack, seq: 9, ack: 0x0102_0305)
        #expect(active.run(&synAck, .inbound, now: at(100)) == .acceptRewritten)
        _ = out(active, PacketBuilder.tcp(Net.hostB, 40002, Net.remote, 80, flags: TCPFlag.ack, seq: 0x0102_0305, ack: 10), now: at(100))
        _ = out(active, PacketBuilder.udp(Net.hostB, 5000, Net.remote, 53), now: at(100))
        #expect(active.expire(now: at(300), budget: 100) == 2) // hostA's flows, idle since t0
        let events = drain(active)
        #expect(events.map(\.kind) == [.mappingCreated, .sessionCreated, .sessionEstablished, .mappingCreated, .sessionCreated,
                                       .sessionRemoved, .mappingRemoved, .sessionRemoved, .mappingRemoved], "\(events.map(\.kind))")
        for event in events {
            replica.apply(event, wallClock: wall(NATTime(nanoseconds: event.timeNanoseconds)), configuration: active.configuration)
        }
        return (active, replica, active.configuration)
    }

    @Test("a resync with the events after it applied holds the active's flows: new ones, established, removed")
    func sameFlowsAsTheActive() throws {
        let (active, replica, _) = Self.replicate()
        let copy = replica.snapshot(savedAt: Self.wall(at(300)), minimumRemaining: .seconds(60))
        let truth = active.exportState(now: at(300), savedAt: Self.wall(at(300)))
        #expect(Self.flows(copy) == Self.flows(truth))
        #expect(Self.flows(copy).count == 2 && replica.sessionCount == 2)
        #expect(Self.flows(copy).contains("6 \(Net.hostB.address.value):40002 -> \(Net.remote.address.value):80 via 0:40002 ESTABLISHED"))
        #expect(replica.updatedAt == Self.wall(at(300)))
        // What was not there changes nothing.
        var again = replica
        let gone = NATEvent(timeNanoseconds: 0, kind: .sessionRemoved, reason: .expired, protocolNumber: 17,
                            internalAddress: Net.hostC.address.value, internalPort: 1, externalAddress: Net.external.address.value,
                            externalPort: 1, remoteAddress: Net.remote.address.value, remotePort: 53)
        let changed = again.apply(gone, wallClock: Self.wall(at(301)), configuration: active.configuration)
        #expect(!changed)
        #expect(again.sessionCount == 2)
    }

    @Test("restored on the standby: a reply to a replicated flow's port reaches its host; a new flow gets another port")
    func takeoverContinues() throws {
        let (_, replica, _) = Self.replicate()
        let standby = makeTranslator()
        let copy = replica.snapshot(savedAt: Self.wall(at(301)), minimumRemaining: .seconds(60))
        let summary = try standby.importState(copy, downtime: NATDuration(nanoseconds: 0), now: at(301))
        #expect(summary.sessionsRestored == 2 && summary.sessionsNotRestored == 0)
        // The UDP flow made after the resync: its reply is translated back to hostB:5000.
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, 5000, payload: [7])
        #expect(standby.run(&reply, .inbound, now: at(302)) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostB, 5000, payload: [7]))
        // Another host's flow from the same port: port 5000 is held, so it leaves with another.
        let other = Self.out(standby, PacketBuilder.udp(Net.hostC, 5000, Net.remote, 53), now: at(302))
        #expect(sourcePort(other) != 5000)
        // The TCP flow made after the resync goes on in both directions.
        var data = PacketBuilder.tcp(Net.remote, 80, Net.external, 40002, flags: TCPFlag.ack, seq: 10, ack: 0x0102_0305, payload: [1])
        #expect(standby.run(&data, .inbound, now: at(302)) == .acceptRewritten)
        #expect(destinationAddress(data) == Net.hostB && destinationPort(data) == 40002)
    }

    @Test("pool addresses: the events carry the mapping's pool address, and the copy keeps it")
    func pooled() throws {
        let pool = { (c: inout NATConfiguration) in
            var pools = SourceAddressPools()
            pools.defaultPool = pools.addPool([SourcePoolTests.p1.address, SourcePoolTests.p2.address])
            pools.placement = .roundRobin
            c.sourcePools = pools
        }
        let (active, replica, _) = Self.replicate(pool)
        let copy = replica.snapshot(savedAt: Self.wall(at(300)), minimumRemaining: .seconds(60))
        let truth = active.exportState(now: at(300), savedAt: Self.wall(at(300)))
        #expect(Self.flows(copy) == Self.flows(truth))
        #expect(truth.mappings.allSatisfy { $0.externalIndex != 0 }, "every mapping is on a pool address")
        let standby = makeTranslator(pool)
        let summary = try standby.importState(copy, downtime: NATDuration(nanoseconds: 0), now: at(301))
        #expect(summary.sessionsRestored == 2)
    }

    @Test("a session whose mapping event was missed brings its mapping; a lifetime run out gets the minimum")
    func sessionCarriesMapping() throws {
        let configuration = makeTranslator().configuration
        let resync = makeTranslator().exportState(now: t0, savedAt: Self.wall(t0))
        var replica = NATReplica(resync)
        let created = NATEvent(timeNanoseconds: 0, kind: .sessionCreated, reason: .outbound, protocolNumber: 17,
                               internalAddress: Net.hostA.address.value, internalPort: 1234, externalAddress: Net.external.address.value,
                               externalPort: 2345, remoteAddress: Net.remote.address.value, remotePort: 53)
        let made = replica.apply(created, wallClock: Self.wall(t0), configuration: configuration)
        #expect(made)
        #expect(replica.mappingCount == 1 && replica.sessionCount == 1)
        // Long after its UDP timeout, with no removal seen: still the peer's, so it gets the minimum.
        let copy = replica.snapshot(savedAt: Self.wall(at(3600)), minimumRemaining: .seconds(60))
        #expect(copy.sessions.map(\.lifetime.remaining) == [.seconds(60)])
        #expect(copy.mappings.map(\.externalPort) == [2345])
        var removed = created
        removed.kind = .sessionRemoved
        let sessionGone = replica.apply(removed, wallClock: Self.wall(at(1)), configuration: configuration)
        removed.kind = .mappingRemoved
        let mappingGone = replica.apply(removed, wallClock: Self.wall(at(1)), configuration: configuration)
        #expect(sessionGone && mappingGone)
        #expect(replica.sessionCount == 0 && replica.mappingCount == 0)
    }
}

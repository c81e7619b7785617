import NATTestKit
import Testing
@testable import NATCore

// The HA standby's copy keeps address-only rows and redirected connections from the active's
// events too (not only from full resyncs): rows made after the resync are in its snapshot,
// removed ones are not, and restored on the standby an answer to a replicated row reaches its
// host and the proxy's lookup finds a replicated redirect's original destination.

@Suite("HA replica: address-only rows and redirects")
struct NATReplicaAddressOnlyRedirectTests {
    let flows = AddressOnlyTranslationTests()
    let redirects = RedirectTranslationTests()

    @Test("rows and redirects made after the resync are added, removed ones go; the snapshot restores them")
    func incrementsApplied() throws {
        let active = redirects.makeRedirecting()
        active.enableEvents(capacity: 256, now: t0)
        let wall = NATReplicaTests.wall
        // Before the resync: an ESP row of A (it expires later) and a redirect of A's port 40000.
        _ = NATReplicaTests.out(active, flows.packet(Net.hostA, Net.remote, AddressOnlyTranslationTests.esp, AddressOnlyTranslationTests.espPayload), now: t0)
        var syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 80, flags: TCPFlag.syn)
        #expect(redirects.fromClient(active, &syn, now: t0) == .acceptRewritten)
        var replica = NATReplica(active.exportState(now: at(1), savedAt: wall(at(1))))
        _ = NATReplicaTests.drain(active)
        #expect(replica.addressOnlyFlowCount == 1 && replica.redirectCount == 1)

        // After it: a GRE row of B, a redirect of B, then A's ESP row and redirect expire.
        _ = NATReplicaTests.out(active, flows.packet(Net.hostB, Net.remote2, AddressOnlyTranslationTests.gre, AddressOnlyTranslationTests.grePayload), now: at(500))
        var synB = PacketBuilder.tcp(Net.hostB, 41000, Net.remote2, 80, flags: TCPFlag.syn)
        #expect(redirects.fromClient(active, &synB, now: at(500)) == .acceptRewritten)
        active.expire(now: at(600), budget: 100)
        let events = NATReplicaTests.drain(active)
        #expect(events.map(\.kind) == [.addressOnlyCreated, .redirectCreated, .addressOnlyRemoved, .redirectRemoved], "\(events.map(\.kind))")
        for event in events {
            let applied = replica.apply(event, wallClock: wall(NATTime(nanoseconds: event.timeNanoseconds)), configuration: active.configuration)
            #expect(applied)
        }
        // A removal of what the copy does not hold changes nothing.
        let again = replica.apply(events[2], wallClock: wall(at(600)), configuration: active.configuration)
        #expect(!again)
        #expect(replica.addressOnlyFlowCount == 1 && replica.redirectCount == 1)

        let snapshot = replica.snapshot(savedAt: wall(at(600)), minimumRemaining: .seconds(60))
        #expect(snapshot.addressOnlyFlows == [.init(protocolNumber: 47, internalAddress: Net.hostB.address.value,
                                                    remoteAddress: Net.remote2.address.value, remaining: .seconds(500))])
        // Just opened as far as the events say: an unanswered SYN's lifetime (tcp-opening) from
        // 500 is over by 600, so it gets the minimum (the active still had it: no removal came).
        #expect(snapshot.redirects == [.init(client: IPv4Endpoint(address: Net.hostB.address, port: 41000),
                                             original: IPv4Endpoint(address: Net.remote2.address, port: 80),
                                             local: IPv4Endpoint(address: RedirectTranslationTests.routerLAN.address, port: 3128),
                                             lifetime: .init(tcpState: .opening, tcpFlagsSeen: 0, remaining: .seconds(60)))])
        #expect(snapshot.externalAddress == Net.external.address)

        // Through the wire format and into the standby's fresh translator.
        let standby = redirects.makeRedirecting()
        let summary = try standby.importState(NATStateSnapshot(decoding: snapshot.encoded()), downtime: .seconds(1), now: at(601))
        #expect(summary.addressOnlyFlowsRestored == 1 && summary.redirectsRestored == 1)
        var answer = flows.packet(Net.remote2, Net.external, AddressOnlyTranslationTests.gre, AddressOnlyTranslationTests.grePayload)
        #expect(standby.run(&answer, .inbound, now: at(602)) == .acceptRewritten)
        #expect(answer == flows.packet(Net.remote2, Net.hostB, AddressOnlyTranslationTests.gre, AddressOnlyTranslationTests.grePayload))
        let found = standby.originalDestination(clientAddress: Net.hostB.address, clientPort: 41000, now: at(602))
        #expect(found?.originalAddress == Net.remote2.address && found?.originalPort == 80 && found?.localPort == 3128)
    }

    @Test("an address-only removal names its host: a row another host holds now is kept")
    func removalOfAnotherHostsRow() {
        let active = makeTranslator()
        var replica = NATReplica(active.exportState(now: t0, savedAt: NATReplicaTests.wall0))
        func event(_ kind: NATEventKind, _ host: IPv4Bytes) -> NATEvent {
            NATEvent(timeNanoseconds: 0, kind: kind, reason: kind.isCreation ? .outbound : .expired, protocolNumber: 50,
                     internalAddress: host.address.value, internalPort: 0, externalAddress: Net.external.address.value, externalPort: 0,
                     remoteAddress: Net.remote.address.value, remotePort: 0)
        }
        let created = replica.apply(event(.addressOnlyCreated, Net.hostB), wallClock: NATReplicaTests.wall0, configuration: active.configuration)
        #expect(created)
        let otherHost = replica.apply(event(.addressOnlyRemoved, Net.hostA), wallClock: NATReplicaTests.wall0, configuration: active.configuration)
        #expect(!otherHost)
        #expect(replica.addressOnlyFlowCount == 1)
        let applied = replica.apply(event(.addressOnlyRemoved, Net.hostB), wallClock: NATReplicaTests.wall0, configuration: active.configuration)
        #expect(applied)
        #expect(replica.addressOnlyFlowCount == 0)
    }
}

import NATTestKit
import Testing
@testable import NATCore

// Reconfiguring a live translator (the daemon's SIGHUP reload): what changes, when it takes
// effect, what live flows keep, and that a refusal changes nothing.

@Suite("Reconfigure")
struct ReconfigureTests {
    static func forwards(_ texts: [String]) -> [PortForward] { texts.map { PortForward($0)! } }

    /// The translator's configuration with `change` applied: what a reload hands over.
    static func changed(_ nat: NATTranslator, _ change: (inout NATConfiguration) -> Void) -> NATConfiguration {
        var configuration = nat.configuration
        change(&configuration)
        return configuration
    }

    static func tcpPayload(_ p: [UInt8]) -> [UInt8] {
        let ihl = Verify.headerLength(p)
        return Array(p[(ihl + Int(p[ihl + 12] >> 4) * 4)..<Verify.totalLength(p)])
    }

    /// An inbound SYN from `remote`:`sourcePort` to the external address and `port`, after translation.
    static func inboundSYN(_ nat: NATTranslator, from remote: IPv4Bytes = Net.remote, sourcePort: UInt16 = 40000,
                           to port: UInt16, now: NATTime = t0) -> (verdict: TranslationVerdict, packet: [UInt8], original: [UInt8]) {
        var syn = PacketBuilder.tcp(remote, sourcePort, Net.external, port, flags: TCPFlag.syn)
        let original = syn
        let verdict = nat.run(&syn, .inbound, now: now)
        return (verdict, syn, original)
    }

    // MARK: forwards

    @Test("a forward added at run time translates inbound SYNs to it; before, they went to the router unchanged")
    func forwardAdded() throws {
        let nat = makeTranslator()
        let before = Self.inboundSYN(nat, to: 8080)
        #expect(before.verdict == .accept && before.packet == before.original)

        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80"]) }, now: t0)
        #expect(summary.forwardsAdded == Self.forwards(["tcp:8080=192.0.2.10:80"]) && summary.forwardsRemoved.isEmpty)
        #expect(!summary.isEmpty && !summary.timeoutsChanged && !summary.helpersChanged)
        #expect(nat.mappingCount == 1)

        let after = Self.inboundSYN(nat, to: 8080, now: at(1))
        #expect(after.verdict == .acceptRewritten)
        #expect(destinationAddress(after.packet) == Net.hostA && destinationPort(after.packet) == 80)
        #expect(Verify.ipHeaderChecksumValid(after.packet) && Verify.transportChecksumValid(after.packet))
        // The port is reserved: a LAN host connecting from TCP port 8080 gets another external port.
        var out = PacketBuilder.tcp(Net.hostB, 8080, Net.remote, 443)
        #expect(nat.run(&out, .outbound, now: at(1)) == .acceptRewritten)
        #expect(sourcePort(out) != 8080)
    }

    @Test("a removed forward with no sessions is gone at once: inbound passes to the router, the port is free again")
    func forwardRemovedUnused() throws {
        let nat = makeTranslator { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80", "udp:5000=192.0.2.11"]) }
        #expect(nat.mappingCount == 2)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["udp:5000=192.0.2.11"]) }, now: t0)
        #expect(summary.forwardsRemoved == Self.forwards(["tcp:8080=192.0.2.10:80"]) && summary.forwardsAdded.isEmpty)
        #expect(summary.mappingsLingering == 0 && nat.mappingCount == 1)
        let syn = Self.inboundSYN(nat, to: 8080)
        #expect(syn.verdict == .accept && syn.packet == syn.original)
        // The kept forward still works.
        var datagram = PacketBuilder.udp(Net.remote, 999, Net.external, 5000)
        #expect(nat.run(&datagram, .inbound) == .acceptRewritten && destinationAddress(datagram) == Net.hostB)
        // Port 8080 can be handed out again (port preservation).
        var out = PacketBuilder.tcp(Net.hostB, 8080, Net.remote, 443)
        #expect(nat.run(&out, .outbound) == .acceptRewritten && sourcePort(out) == 8080)
    }

    @Test("a removed forward's live session goes on until it expires; new remotes no longer get in")
    func forwardRemovedWithLiveSession() throws {
        let nat = makeTranslator { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80"]) }
        #expect(Self.inboundSYN(nat, to: 8080).verdict == .acceptRewritten)
        var synAck = PacketBuilder.tcp(Net.hostA, 80, Net.remote, 40000, flags: TCPFlag.syn | TCPFlag.ack)
        #expect(nat.run(&synAck, .outbound) == .acceptRewritten)

        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = [] }, now: at(1))
        #expect(summary.mappingsLingering == 1 && summary.sessionsFlushed == 0)
        #expect(nat.sessionCount == 1 && nat.mappingCount == 1)

        // The live connection, both ways.
        var data = PacketBuilder.tcp(Net.remote, 40000, Net.external, 8080, flags: TCPFlag.ack, payload: Array("GET".utf8))
        #expect(nat.run(&data, .inbound, now: at(2)) == .acceptRewritten)
        #expect(destinationAddress(data) == Net.hostA && destinationPort(data) == 80 && Verify.transportChecksumValid(data))
        var reply = PacketBuilder.tcp(Net.hostA, 80, Net.remote, 40000, flags: TCPFlag.ack, payload: Array("200".utf8))
        #expect(nat.run(&reply, .outbound, now: at(2)) == .acceptRewritten && sourcePort(reply) == 8080)
        // Another remote, or another port of the same remote: not admitted any more.
        #expect(Self.inboundSYN(nat, from: Net.remote2, to: 8080, now: at(2)).verdict == .accept)
        #expect(Self.inboundSYN(nat, sourcePort: 40001, to: 8080, now: at(2)).verdict == .accept)
        #expect(nat.sessionCount == 1)

        // When the session expires, the mapping goes with it.
        nat.expire(now: at(2 + 7441), budget: 1024)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 0)
        #expect(Self.inboundSYN(nat, to: 8080, now: at(2 + 7442)).verdict == .accept)
    }

    @Test("a forward re-pointed to another host cuts the old target's sessions; new connections reach the new target")
    func forwardRepointed() throws {
        let nat = makeTranslator { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80"]) }
        #expect(Self.inboundSYN(nat, to: 8080).verdict == .acceptRewritten)
        #expect(nat.sessionCount == 1)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["tcp:8080=192.0.2.11:8000"]) }, now: at(1))
        #expect(summary.sessionsFlushed == 1 && summary.forwardsAdded.count == 1 && summary.forwardsRemoved.count == 1)
        #expect(nat.sessionCount == 0 && nat.mappingCount == 1 && nat.counters[.sessionsFlushed] == 1)
        let syn = Self.inboundSYN(nat, to: 8080, now: at(2))
        #expect(syn.verdict == .acceptRewritten && destinationAddress(syn.packet) == Net.hostB && destinationPort(syn.packet) == 8000)
    }

    @Test("a forward moved to another external port: the old port is free, the new one reaches the same host")
    func forwardMoved() throws {
        let nat = makeTranslator { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80"]) }
        #expect(Self.inboundSYN(nat, to: 8080).verdict == .acceptRewritten)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["tcp:9090=192.0.2.10:80"]) }, now: at(1))
        // One internal endpoint has one mapping: the old one (and its session) had to go.
        #expect(summary.sessionsFlushed == 1 && nat.mappingCount == 1)
        #expect(Self.inboundSYN(nat, to: 8080, now: at(2)).verdict == .accept)
        let syn = Self.inboundSYN(nat, to: 9090, now: at(2))
        #expect(syn.verdict == .acceptRewritten && destinationAddress(syn.packet) == Net.hostA && destinationPort(syn.packet) == 80)
    }

    @Test("a new forward on a port a LAN host's live mapping holds is refused, and nothing of the reload is applied")
    func forwardPortHeldRefused() throws {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostB, 6000, Net.remote, 53)
        #expect(nat.run(&out, .outbound) == .acceptRewritten && sourcePort(out) == 6000)
        let wanted = Self.changed(nat) {
            $0.forwards = Self.forwards(["tcp:22=192.0.2.10", "udp:6000=192.0.2.10"])
            $0.timeouts.udp = .seconds(30)
            $0.filtering = .endpointIndependent
        }
        #expect(throws: ReconfigureError.forwardPortInUse(PortForward("udp:6000=192.0.2.10")!, port: 6000, holder: Net.hostB.address, holderPort: 6000)) {
            try nat.reconfigure(wanted, now: at(1))
        }
        #expect(nat.configuration.forwards.isEmpty && nat.configuration.timeouts.udp == .seconds(300))
        #expect(nat.configuration.filtering == .addressAndPortDependent && nat.mappingCount == 1)
        #expect(Self.inboundSYN(nat, to: 22, now: at(1)).verdict == .accept)
        let message = ReconfigureError.forwardPortInUse(PortForward("udp:6000=192.0.2.10")!, port: 6000, holder: Net.hostB.address, holderPort: 6000).description
        #expect(message == "forward udp:6000=192.0.2.10: external port 6000 is held by a live mapping of 192.0.2.11:6000; retry when it has expired, or use another port")

        // Once that mapping's session has expired, the same reload goes through.
        let summary = try nat.reconfigure(wanted, now: at(301))
        #expect(summary.forwardsAdded.count == 2 && summary.timeoutsChanged && summary.filteringChanged)
        var datagram = PacketBuilder.udp(Net.remote, 999, Net.external, 6000)
        #expect(nat.run(&datagram, .inbound, now: at(302)) == .acceptRewritten && destinationAddress(datagram) == Net.hostA)
    }

    @Test("a new forward whose internal endpoint has a live mapping elsewhere is refused")
    func forwardTargetHeldRefused() throws {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 7000, Net.remote, 53)
        _ = nat.run(&out, .outbound)
        let external = sourcePort(out)
        #expect(external == 7000)
        #expect(throws: ReconfigureError.forwardTargetInUse(PortForward("udp:7001=192.0.2.10:7000")!, internalPort: 7000, externalPort: 7000)) {
            try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["udp:7001=192.0.2.10:7000"]) }, now: at(1))
        }
        #expect(nat.mappingCount == 1 && nat.configuration.forwards.isEmpty)
    }

    @Test("a LAN host's live mapping on the forward's own port, of the forward's own endpoint, becomes the forward")
    func dynamicMappingPromoted() throws {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 5060, Net.remote, 5060)
        #expect(nat.run(&out, .outbound) == .acceptRewritten && sourcePort(out) == 5060)
        // Address-and-port-dependent: a stranger does not get in yet.
        var stranger = PacketBuilder.udp(Net.remote2, 5060, Net.external, 5060)
        #expect(nat.run(&stranger, .inbound) == .accept)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["udp:5060=192.0.2.10"]) }, now: at(1))
        #expect(summary.forwardsAdded.count == 1 && summary.sessionsFlushed == 0 && nat.mappingCount == 1 && nat.sessionCount == 1)
        stranger = PacketBuilder.udp(Net.remote2, 5060, Net.external, 5060)
        #expect(nat.run(&stranger, .inbound, now: at(2)) == .acceptRewritten && destinationAddress(stranger) == Net.hostA)
        #expect(Verify.transportChecksumValid(stranger))
        // The old session is still there: the remote it talked to still gets through.
        var reply = PacketBuilder.udp(Net.remote, 5060, Net.external, 5060)
        #expect(nat.run(&reply, .inbound, now: at(2)) == .acceptRewritten)
        #expect(nat.sessionCount == 2)
    }

    @Test("forwards beyond the mapping table's size at the start grow it; live flows and the dynamic cap survive")
    func mappingTableGrows() throws {
        let nat = makeTranslator {
            $0.maxMappings = 4
            $0.maxSessions = 64
        }
        var ports: [UInt16] = []
        for i in 0..<4 {
            var out = PacketBuilder.udp(Net.hostA, UInt16(30000 + i), Net.remote, 53)
            #expect(nat.run(&out, .outbound) == .acceptRewritten)
            ports.append(sourcePort(out))
        }
        var full = PacketBuilder.udp(Net.hostA, 30009, Net.remote, 53)
        #expect(nat.run(&full, .outbound) == .drop(.mappingTableFull))

        let summary = try nat.reconfigure(Self.changed(nat) { $0.forwards = Self.forwards(["udp:6000-6019=192.0.2.11"]) }, now: at(1))
        #expect(summary.forwardsAdded.count == 1 && nat.mappingCount == 24)
        // Every old flow still translates, to the port it had.
        for i in 0..<4 {
            var reply = PacketBuilder.udp(Net.remote, 53, Net.external, ports[i])
            #expect(nat.run(&reply, .inbound, now: at(2)) == .acceptRewritten)
            #expect(destinationAddress(reply) == Net.hostA && destinationPort(reply) == UInt16(30000 + i))
        }
        for port: UInt16 in [6000, 6019] {
            var datagram = PacketBuilder.udp(Net.remote, 999, Net.external, port)
            #expect(nat.run(&datagram, .inbound, now: at(2)) == .acceptRewritten && destinationPort(datagram) == port)
        }
        // Still at most 4 dynamic mappings besides the 20 static ones.
        full = PacketBuilder.udp(Net.hostA, 30009, Net.remote, 53)
        #expect(nat.run(&full, .outbound, now: at(2)) == .drop(.mappingTableFull))
    }

    // MARK: timeouts, filtering, limits

    @Test("new timeouts: new sessions get them at once, live ones at their next packet, idle ones keep their expiry")
    func timeoutsChanged() throws {
        let nat = makeTranslator()
        var a = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        var b = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 53)
        _ = nat.run(&a, .outbound)
        _ = nat.run(&b, .outbound)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.timeouts.udp = .seconds(30) }, now: at(1))
        #expect(summary.timeoutsChanged && !summary.filteringChanged && summary.forwardsAdded.isEmpty)
        func expiresIn(_ host: IPv4Bytes, _ now: NATTime) -> NATDuration? {
            nat.snapshots(now: now).first { $0.internalAddress == host.address }?.expiresIn
        }
        #expect(expiresIn(Net.hostA, at(1)) == .seconds(299))  // untouched: the old expiry
        a = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 53)
        _ = nat.run(&a, .outbound, now: at(2))
        #expect(expiresIn(Net.hostA, at(2)) == .seconds(30))   // refreshed: the new timeout
        #expect(expiresIn(Net.hostB, at(2)) == .seconds(298))
        var c = PacketBuilder.udp(Net.hostC, 40000, Net.remote, 53)
        _ = nat.run(&c, .outbound, now: at(2))
        #expect(expiresIn(Net.hostC, at(2)) == .seconds(30))   // new: the new timeout
    }

    @Test("filtering changed to endpoint-independent admits a new remote to a live mapping")
    func filteringChanged() throws {
        let nat = makeTranslator()
        var out = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 3478)
        _ = nat.run(&out, .outbound)
        let port = sourcePort(out)
        var stranger = PacketBuilder.udp(Net.remote2, 3478, Net.external, port)
        #expect(nat.run(&stranger, .inbound) == .accept)
        #expect(try nat.reconfigure(Self.changed(nat) { $0.filtering = .endpointIndependent }, now: at(1)).filteringChanged)
        stranger = PacketBuilder.udp(Net.remote2, 3478, Net.external, port)
        #expect(nat.run(&stranger, .inbound, now: at(1)) == .acceptRewritten && destinationAddress(stranger) == Net.hostA)
    }

    @Test("a lowered per-host cap refuses new sessions above it; the host's live ones stay")
    func perHostCapLowered() throws {
        let nat = makeTranslator()
        for port: UInt16 in 1...3 {
            var out = PacketBuilder.udp(Net.hostA, 40000, Net.remote, port)
            #expect(nat.run(&out, .outbound) == .acceptRewritten)
        }
        #expect(try nat.reconfigure(Self.changed(nat) { $0.maxSessionsPerHost = 2 }, now: at(1)).limitsChanged)
        var more = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 4)
        #expect(nat.run(&more, .outbound, now: at(1)) == .drop(.hostSessionLimit))
        var again = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 1)
        #expect(nat.run(&again, .outbound, now: at(1)) == .acceptRewritten)
        #expect(nat.sessionCount == 3)
    }

    // MARK: helpers

    static func helperConnection(_ nat: NATTranslator, host: IPv4Bytes, sourcePort: UInt16, serverPort: UInt16, now: NATTime) -> [UInt8]? {
        var syn = PacketBuilder.tcp(host, sourcePort, Net.remote, serverPort, flags: TCPFlag.syn, seq: 1000)
        _ = nat.run(&syn, .outbound, now: now)
        return helperSegment(nat, host: host, sourcePort: sourcePort, serverPort: serverPort, seq: 1001, now: now)
    }

    /// The payload of an "ab@cd" segment after translation (nil if dropped).
    static func helperSegment(_ nat: NATTranslator, host: IPv4Bytes, sourcePort: UInt16, serverPort: UInt16, seq: UInt32, now: NATTime) -> [UInt8]? {
        var data = PacketBuilder.tcp(host, sourcePort, Net.remote, serverPort, flags: TCPFlag.ack | TCPFlag.psh,
                                     seq: seq, ack: 1, payload: Array("ab@cd\r\n".utf8))
        switch nat.run(&data, .outbound, now: now) {
        case .acceptReplaced(let bytes):
            let packet = Array(bytes)
            #expect(Verify.ipHeaderChecksumValid(packet) && Verify.transportChecksumValid(packet))
            return tcpPayload(packet)
        case .acceptRewritten: return tcpPayload(data)
        default: return nil
        }
    }

    static let edited = Array("ab@@@@cd\r\n".utf8), plain = Array("ab@cd\r\n".utf8)

    @Test("helpers removed: a live helper connection keeps its helper until it ends; new connections get none")
    func helperRemoved() throws {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }
        #expect(Self.helperConnection(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, now: t0) == Self.edited)
        let summary = try nat.reconfigure(Self.changed(nat) { $0.helpers = [] }, now: at(1))
        #expect(summary.helpersChanged && nat.helperConnectionCount == 1)
        // The helper stays listed without ports: its connection and its counters go on.
        #expect(nat.configuration.helpers.map(\.helper.name) == ["grow"] && nat.configuration.helpers[0].ports.isEmpty)
        #expect(Self.helperSegment(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, seq: 1008, now: at(2)) == Self.edited)
        #expect(Self.helperConnection(nat, host: Net.hostB, sourcePort: 40000, serverPort: 21, now: at(2)) == Self.plain)
        #expect(nat.helperConnectionCount == 1)
    }

    @Test("helpers moved to another port and added: new connections follow the new list, live ones keep theirs")
    func helperMovedAndAdded() throws {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }
        #expect(Self.helperConnection(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, now: t0) == Self.edited)
        let summary = try nat.reconfigure(Self.changed(nat) {
            $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [2121])]
        }, now: at(1))
        #expect(summary.helpersChanged && nat.configuration.helpers.count == 1 && nat.configuration.helpers[0].ports == [2121])
        #expect(Self.helperSegment(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, seq: 1008, now: at(2)) == Self.edited)
        #expect(Self.helperConnection(nat, host: Net.hostB, sourcePort: 40001, serverPort: 21, now: at(2)) == Self.plain)
        #expect(Self.helperConnection(nat, host: Net.hostB, sourcePort: 40002, serverPort: 2121, now: at(2)) == Self.edited)
        #expect(nat.helperConnectionCount == 2)
        // Unchanged helpers: nothing to report.
        #expect(try nat.reconfigure(nat.configuration, now: at(3)).isEmpty)
    }

    @Test("a helper added to a translator started without any gets its tables and works")
    func helperAddedToNone() throws {
        let nat = makeTranslator()
        #expect(Self.helperConnection(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, now: t0) == Self.plain)
        try nat.reconfigure(Self.changed(nat) { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }, now: at(1))
        #expect(nat.counters.helperEvents.count == 1)
        // The connection opened before keeps going without a helper; a new one has it.
        #expect(Self.helperSegment(nat, host: Net.hostA, sourcePort: 40000, serverPort: 21, seq: 1008, now: at(2)) == Self.plain)
        for port: UInt16 in 40001...40003 {
            #expect(Self.helperConnection(nat, host: Net.hostB, sourcePort: port, serverPort: 21, now: at(2)) == Self.edited)
        }
        #expect(nat.helperConnectionCount == 3)
    }

    // MARK: refusals

    @Test("settings the tables or the rules are made from are refused, and nothing changes")
    func unchangeableRefused() throws {
        let nat = makeTranslator { $0.forwards = Self.forwards(["tcp:8080=192.0.2.10:80"]) }
        let cases: [(NATSetting, (inout NATConfiguration) -> Void)] = [
            (.internalPrefixes, { $0.internalPrefixes = [IPv4Prefix("10.0.0.0/8")!] }),
            (.ports, { $0.ports = PortAllocator(portRange: 20000...30000, lowPortRange: nil) }),
            (.maxSessions, { $0.maxSessions = 2048 }),
            (.maxMappings, { $0.maxMappings = 2048 }),
            (.helperLimits, { $0.helperLimits.connections = 5 }),
        ]
        for (setting, change) in cases {
            let wanted = Self.changed(nat) {
                change(&$0)
                $0.forwards = []
                $0.timeouts.udp = .seconds(1)
            }
            #expect(throws: ReconfigureError.unchangeable(setting)) { try nat.reconfigure(wanted, now: t0) }
            #expect(nat.configuration.forwards.count == 1 && nat.configuration.timeouts.udp == .seconds(300))
        }
        #expect(Self.inboundSYN(nat, to: 8080).verdict == .acceptRewritten)
        #expect(ReconfigureError.unchangeable(.ports).description == "the port range cannot change while running")
    }

    @Test("the external address and the hash seed stay the translator's own")
    func ownStateKept() throws {
        let nat = makeTranslator()
        let seed = nat.configuration.hashSeed
        try nat.reconfigure(Self.changed(nat) {
            $0.externalAddress = nil
            $0.hashSeed = seed &+ 1
            $0.filtering = .endpointIndependent
        }, now: t0)
        #expect(nat.configuration.externalAddress == Net.external.address && nat.configuration.hashSeed == seed)
        #expect(nat.configuration.filtering == .endpointIndependent)
    }
}

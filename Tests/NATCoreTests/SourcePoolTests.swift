import NATTestKit
import Testing
@testable import NATCore

// Issue #15 item 1: source address pools (`--to-source`, per-prefix pools) with paired
// pooling (RFC 4787 REQ-2): each internal host keeps one pool address for all its mappings;
// placement by hash (stable across restarts) or round-robin; inbound, ICMP errors, hairpin,
// exhaustion without spill-over, the state file and the flow listing follow. Every rewritten
// packet is compared byte for byte with one the kit builds (its checksums by RefChecksum).

@Suite("Source address pools")
struct SourcePoolTests {
    static let p1 = IPv4Bytes(198, 18, 0, 1)
    static let p2 = IPv4Bytes(198, 18, 0, 2)

    static func pooled(_ placement: SourceAddressPools.Placement = .roundRobin, prefixes: [String] = ["192.0.2.0/24"],
                       _ configure: (inout NATConfiguration) -> Void = { _ in }) -> NATTranslator {
        makeTranslator(internalPrefixes: prefixes) {
            var pools = SourceAddressPools()
            pools.defaultPool = pools.addPool([p1.address, p2.address])
            pools.placement = placement
            $0.sourcePools = pools
            configure(&$0)
        }
    }

    /// Sends UDP from host:port to remote:53 and returns the external address and port it left with, checking every byte.
    static func udpOut(_ nat: NATTranslator, _ host: IPv4Bytes, _ port: UInt16, to remote: IPv4Bytes = Net.remote,
                       now: NATTime = t0) -> (address: IPv4Bytes, port: UInt16)? {
        var packet = PacketBuilder.udp(host, port, remote, 53, payload: [1, 2])
        guard nat.run(&packet, .outbound, now: now) == .acceptRewritten else { return nil }
        let out = (sourceAddress(packet), sourcePort(packet))
        #expect(packet == PacketBuilder.udp(out.0, out.1, remote, 53, payload: [1, 2]))
        return out
    }

    @Test("round-robin places two hosts on two addresses; each keeps its address for every mapping, protocol and remote")
    func pairedRoundRobin() throws {
        let nat = Self.pooled()
        let a = try #require(Self.udpOut(nat, Net.hostA, 40000))
        let b = try #require(Self.udpOut(nat, Net.hostB, 40000))
        #expect(a.address == Self.p1 && b.address == Self.p2)
        #expect(a.port == 40000 && b.port == 40000, "each address has its own ports: both preserved")
        for port: UInt16 in 40001..<40010 {
            #expect(Self.udpOut(nat, Net.hostA, port, to: Net.remote2)?.address == Self.p1)
            #expect(Self.udpOut(nat, Net.hostB, port)?.address == Self.p2)
        }
        var syn = PacketBuilder.tcp(Net.hostA, 50000, Net.remote, 443)
        #expect(nat.run(&syn, .outbound) == .acceptRewritten)
        #expect(syn == PacketBuilder.tcp(Self.p1, 50000, Net.remote, 443))
        var ping = PacketBuilder.icmp(Net.hostB, Net.remote, identifier: 77)
        #expect(nat.run(&ping, .outbound) == .acceptRewritten)
        #expect(ping == PacketBuilder.icmp(Self.p2, Net.remote, identifier: 77))
        #expect(nat.snapshots(now: t0).allSatisfy { $0.externalAddress == ($0.internalAddress == Net.hostA.address ? Self.p1 : Self.p2).address })
    }

    @Test("replies to a pool address reach their host; the same port on the other pool address or the WAN address is not theirs")
    func inbound() throws {
        let nat = Self.pooled()
        _ = try #require(Self.udpOut(nat, Net.hostA, 40000))
        var reply = PacketBuilder.udp(Net.remote, 53, Self.p1, 40000, payload: [3])
        #expect(nat.run(&reply, .inbound) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, payload: [3]))
        for wrong in [Self.p2, Net.external] {
            let original = PacketBuilder.udp(Net.remote, 53, wrong, 40000, payload: [3])
            expectUnchanged(nat, original, .inbound)
        }
        #expect(nat.counters[.inboundUnmatched] == 2)
        // A pool address as a source from outside is ours: spoofed.
        var spoofed = PacketBuilder.udp(Self.p2, 53, Self.p1, 40000, payload: [3])
        #expect(nat.run(&spoofed, .inbound) == .drop(.spoofedSource))
    }

    @Test("an ICMP error about a pooled flow comes back to its host, quoted packet fixed")
    func icmpError() throws {
        let nat = Self.pooled()
        var out = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53, payload: [1])
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        var error = PacketBuilder.icmpError(from: Net.remote, to: Self.p1, quoting: out)
        #expect(nat.run(&error, .inbound) == .acceptRewritten)
        #expect(error == PacketBuilder.icmpError(from: Net.remote, to: Net.hostA, quoting: PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53, payload: [1])))
    }

    @Test("hash placement: the same address for a host in any translator (another seed, after a restart), by the documented hash")
    func hashPlacementStable() throws {
        let hosts = (10...40).map { IPv4Bytes(192, 0, 2, UInt8($0)) }
        let first = Self.pooled(.hash)
        let second = Self.pooled(.hash) { $0.hashSeed = 0x1234_5678 }
        var seen = Set<UInt32>()
        for (i, host) in hosts.enumerated() {
            let expected = SourceAddressPools.placementHash(host.address.value) % 2 == 0 ? Self.p1 : Self.p2
            #expect(Self.udpOut(first, host, 40000 + UInt16(i))?.address == expected)
            #expect(Self.udpOut(second, host, 41000 + UInt16(i))?.address == expected)
            seen.insert(expected.address.value)
        }
        #expect(seen.count == 2, "31 hosts all hashed to one address")
    }

    @Test("per-prefix pools: a prefix with its own pool, one on the default pool, and without any pool the WAN address")
    func perPrefix() throws {
        let own = IPv4Bytes(198, 18, 1, 1)
        let nat = makeTranslator(internalPrefixes: ["192.0.2.0/26", "192.0.2.64/26", "192.0.2.128/26"]) {
            var pools = SourceAddressPools()
            pools.defaultPool = pools.addPool([Self.p1.address])
            let second = pools.addPool([own.address])
            pools.prefixPools = [nil, second, nil]
            $0.sourcePools = pools
        }
        #expect(Self.udpOut(nat, IPv4Bytes(192, 0, 2, 10), 40000)?.address == Self.p1)
        #expect(Self.udpOut(nat, IPv4Bytes(192, 0, 2, 70), 40000)?.address == own)
        #expect(Self.udpOut(nat, IPv4Bytes(192, 0, 2, 130), 40000)?.address == Self.p1)
        let wanOnly = makeTranslator(internalPrefixes: ["192.0.2.0/25", "192.0.2.128/25"]) {
            var pools = SourceAddressPools()
            pools.prefixPools = [pools.addPool([own.address]), nil]
            $0.sourcePools = pools
        }
        #expect(Self.udpOut(wanOnly, IPv4Bytes(192, 0, 2, 10), 40000)?.address == own)
        #expect(Self.udpOut(wanOnly, IPv4Bytes(192, 0, 2, 130), 40000)?.address == Net.external)
    }

    @Test("without --lan, the router's own packets from a pool address are its own: passed, or for an ICMP error only the quote translated")
    func routersOwnPoolAddress() throws {
        let nat = Self.pooled(prefixes: [])
        let original = PacketBuilder.icmp(Self.p1, Net.remote, type: 0, identifier: 9)
        var reply = original
        #expect(nat.run(&reply, .outbound) == .accept)
        #expect(reply == original && nat.counters[.outboundNotInternal] == 1)
        // The router's own "port unreachable" (from p1) about a datagram it forwarded to hostA.
        var out = PacketBuilder.udp(Net.hostA, 5000, Net.remote, 53, payload: [1])
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        let inbound = PacketBuilder.udp(Net.remote, 53, Net.hostA, 5000, payload: [2])
        var error = PacketBuilder.icmpError(from: Self.p1, to: Net.remote, quoting: inbound)
        #expect(nat.run(&error, .outbound) == .acceptRewritten)
        #expect(error == PacketBuilder.icmpError(from: Self.p1, to: Net.remote, quoting: PacketBuilder.udp(Net.remote, 53, Self.p1, 5000, payload: [2])))
    }

    @Test("a router socket that takes a pool mapping's port evicts it, as on the WAN address; new mappings skip the router's ports there too")
    func routersPortsOnPoolAddresses() throws {
        let nat = Self.pooled()
        #expect(Self.udpOut(nat, Net.hostA, 5000)?.address == Self.p1) // keeps hostA paired with p1
        #expect(Self.udpOut(nat, Net.hostA, 4500)?.address == Self.p1)
        var held = LocalPortSet()
        held.insert(protocolNumber: IPProtocolNumber.udp, port: 4500)
        let update = nat.setLocalPorts(held, reserved: nil)
        #expect(update.mappingsEvicted == 1 && update.sessionsCut == 1, "\(update)")
        let next = try #require(Self.udpOut(nat, Net.hostA, 4500))
        #expect(next.address == Self.p1 && next.port != 4500)
    }

    @Test("a pool address out of ports: the host's new flows are dropped and counted, never moved to another address; the other host's address has its own ports")
    func exhaustionNoSpillOver() throws {
        let nat = Self.pooled { $0.ports = PortAllocator(portRange: 40000...40001, lowPortRange: nil) }
        #expect(Self.udpOut(nat, Net.hostA, 40000)?.address == Self.p1)
        #expect(Self.udpOut(nat, Net.hostB, 40000)?.address == Self.p2)
        #expect(Self.udpOut(nat, Net.hostA, 40001)?.address == Self.p1)
        let original = PacketBuilder.udp(Net.hostA, 40002, Net.remote, 53, payload: [1, 2])
        expectUnchanged(nat, original, .outbound, verdict: .drop(.poolAddressPortsExhausted))
        #expect(nat.counters.drops(.poolAddressPortsExhausted) == 1 && nat.counters.drops(.portsExhausted) == 0)
        #expect(Self.udpOut(nat, Net.hostB, 40001)?.address == Self.p2)
    }

    @Test("hairpin to a pool address: the target's mapping on that address, the sender seen as its own pool address")
    func hairpin() throws {
        let nat = Self.pooled(prefixes: ["192.0.2.0/24"]) { $0.filtering = .endpointIndependent }
        #expect(Self.udpOut(nat, Net.hostA, 40000)?.address == Self.p1)
        #expect(Self.udpOut(nat, Net.hostB, 40000)?.address == Self.p2)
        var packet = PacketBuilder.udp(Net.hostB, 40000, Self.p1, 40000, payload: [5])
        #expect(nat.run(&packet, .hairpin) == .acceptRewritten)
        #expect(packet == PacketBuilder.udp(Self.p2, 40000, Net.hostA, 40000, payload: [5]))
        #expect(nat.counters[.hairpinTranslated] == 1)
    }

    @Test("port forwards stay on the WAN address; a forwarded host's own flows still go out on its pool address")
    func forwardsOnWAN() throws {
        let nat = Self.pooled {
            $0.forwards = [PortForward(protocolNumber: IPProtocolNumber.tcp, externalPorts: 8080...8080, internalAddress: Net.hostA.address, internalPort: 80)]
        }
        var syn = PacketBuilder.tcp(Net.remote, 50000, Net.external, 8080)
        #expect(nat.run(&syn, .inbound) == .acceptRewritten)
        #expect(syn == PacketBuilder.tcp(Net.remote, 50000, Net.hostA, 80))
        var answer = PacketBuilder.tcp(Net.hostA, 80, Net.remote, 50000, flags: 0x12)
        #expect(nat.run(&answer, .outbound) == .acceptRewritten)
        #expect(answer == PacketBuilder.tcp(Net.external, 8080, Net.remote, 50000, flags: 0x12))
        #expect(Self.udpOut(nat, Net.hostA, 40000)?.address == Self.p1)
        let original = PacketBuilder.tcp(Net.remote, 50001, Self.p1, 8080)
        var notForwarded = original
        #expect(nat.run(&notForwarded, .inbound) == .accept && notForwarded == original)
    }

    @Test("the state file keeps each mapping's pool address (version 3); under other pools those mappings are not restored")
    func stateFile() throws {
        let nat = Self.pooled()
        let a = try #require(Self.udpOut(nat, Net.hostA, 40000))
        let b = try #require(Self.udpOut(nat, Net.hostB, 40000))
        let bytes = nat.exportState(now: t0, savedAt: 1).encoded()
        #expect(bytes[8] == 0 && bytes[9] == 3, "version 3 with mappings on pool addresses")
        let decoded = try NATStateSnapshot(decoding: bytes)

        // A restart: round-robin would put B first now; the restored pairing wins.
        let restarted = Self.pooled()
        let summary = try restarted.importState(decoded, downtime: NATDuration(nanoseconds: 0), now: t0)
        #expect(summary.sessionsRestored == 2, "\(summary)")
        #expect(Self.udpOut(restarted, Net.hostB, 40001)?.address == b.address)
        #expect(Self.udpOut(restarted, Net.hostA, 40001)?.address == a.address)
        var reply = PacketBuilder.udp(Net.remote, 53, a.address, a.port, payload: [3])
        #expect(restarted.run(&reply, .inbound) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, payload: [3]))

        let otherPools = makeTranslator {
            var pools = SourceAddressPools()
            pools.defaultPool = pools.addPool([IPv4Bytes(198, 18, 9, 9).address, Self.p2.address])
            $0.sourcePools = pools
        }
        let moved = try otherPools.importState(decoded, downtime: NATDuration(nanoseconds: 0), now: t0)
        #expect(moved.sessionsRestored == 0 && moved.sessionsNotInConfiguration == 2, "\(moved)")

        // Without pools the file is as before: version 1, the index bytes zero.
        let plain = makeTranslator()
        _ = try #require(Self.udpOut(plain, Net.hostA, 40000))
        let old = plain.exportState(now: t0, savedAt: 1).encoded()
        #expect(old[9] == 1 && old[28..<32].allSatisfy { $0 == 0 })
        #expect(try NATStateSnapshot(decoding: old).mappingCount == 1)
    }

    @Test("one version 3 carries both pool mappings and address-only rows: it reads back to the same bytes and restores both")
    func stateFileWithPoolsAndAddressOnly() throws {
        let nat = Self.pooled()
        let a = try #require(Self.udpOut(nat, Net.hostA, 40000))
        let esp = PacketBuilder.ipv4(source: Net.hostB, destination: Net.remote, protocolNumber: 50, transport: [0, 0, 0, 1, 0, 0, 0, 1])
        var out = esp
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        // Protocols without ports leave from the WAN address, pools or not.
        #expect(out == PacketBuilder.ipv4(source: Net.external, destination: Net.remote, protocolNumber: 50, transport: [0, 0, 0, 1, 0, 0, 0, 1]))
        let bytes = nat.exportState(now: t0, savedAt: 1).encoded()
        #expect(bytes[9] == 3)
        #expect(bytes[28..<32].contains { $0 != 0 }, "the pools' fingerprint")
        #expect(Array(bytes[52..<56]) == [0, 0, 0, 1], "one address-only record")
        let decoded = try NATStateSnapshot(decoding: bytes)
        #expect(decoded.encoded() == bytes)

        let restarted = Self.pooled()
        let summary = try restarted.importState(decoded, downtime: NATDuration(nanoseconds: 0), now: t0)
        #expect(summary.sessionsRestored == 1, "\(summary)")
        #expect(restarted.addressOnlyFlowCount == 1)
        var reply = PacketBuilder.udp(Net.remote, 53, a.address, a.port, payload: [3])
        #expect(restarted.run(&reply, .inbound) == .acceptRewritten)
        #expect(reply == PacketBuilder.udp(Net.remote, 53, Net.hostA, 40000, payload: [3]))
        var back = PacketBuilder.ipv4(source: Net.remote, destination: Net.external, protocolNumber: 50, transport: [9, 9, 9, 9])
        #expect(restarted.run(&back, .inbound) == .acceptRewritten)
        #expect(back == PacketBuilder.ipv4(source: Net.remote, destination: Net.hostB, protocolNumber: 50, transport: [9, 9, 9, 9]))

        // A fingerprint without a mapping on a pool address is refused (it would not read back the same).
        var forged = PacketBuilder.ipv4(source: Net.hostA, destination: Net.remote, protocolNumber: 50, transport: [1])
        let plain = makeTranslator()
        #expect(plain.run(&forged, .outbound) == .acceptRewritten)
        var onlyOther = plain.exportState(now: t0, savedAt: 1).encoded()
        #expect(onlyOther[9] == 3 && onlyOther[28..<32].allSatisfy { $0 == 0 })
        onlyOther[31] = 1
        let sum = StateFormat.checksum(onlyOther[0..<(onlyOther.count - 8)])
        for i in 0..<8 { onlyOther[onlyOther.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (56 - 8 * UInt64(i))) }
        #expect(throws: NATStateError.invalidHeader("a pools fingerprint but no mapping on a pool address")) {
            try NATStateSnapshot(decoding: onlyOther)
        }
    }

    @Test("pools: an address twice or more than 32 in all is refused; a reload cannot change them")
    func poolRules() throws {
        var pools = SourceAddressPools()
        #expect(pools.addPool([Self.p1.address, Self.p1.address]) == nil)
        #expect(pools.addPool([Self.p1.address]) == 0)
        #expect(pools.addPool([Self.p1.address]) == nil)
        #expect(pools.addPool((2...32).map { IPv4Address(0xC612_0000 | UInt32($0)) }) == 1)
        #expect(pools.addPool([IPv4Address(0xC612_0100)]) == nil, "a 33rd address")
        #expect(pools.fingerprint != 0 && SourceAddressPools().fingerprint == 0)
        let nat = Self.pooled()
        var changed = nat.configuration
        changed.sourcePools = SourceAddressPools()
        #expect(throws: ReconfigureError.unchangeable(.sourcePools)) { try nat.reconfigure(changed, now: t0) }
    }
}

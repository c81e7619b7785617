import NATTestKit
import Testing
@testable import NATCore

// Spoofed and martian sources from the WAN side (NATTranslator-Spoofing.swift): dropped
// before they reach any state, counted as spoofed_source or martian_source, bytes untouched.

@Suite("Spoofed sources")
struct SpoofingTests {
    /// Runs `packet` and checks the verdict, that the bytes are unchanged, and that exactly
    /// `reason` (and no other drop reason) moved by one.
    private func expectDropped(_ nat: NATTranslator, _ packet: [UInt8], _ direction: PacketDirection, _ reason: DropReason,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let before = nat.counters
        let sessions = nat.sessionCount, mappings = nat.mappingCount
        expectUnchanged(nat, packet, direction, verdict: .drop(reason), sourceLocation: sourceLocation)
        for other in DropReason.allCases {
            let moved = nat.counters.drops(other) - before.drops(other)
            #expect(moved == (other == reason ? 1 : 0), "drop_\(other) moved by \(moved)", sourceLocation: sourceLocation)
        }
        #expect(nat.sessionCount == sessions && nat.mappingCount == mappings, "a spoofed packet made state", sourceLocation: sourceLocation)
        #expect(nat.counters[.inboundTranslated] == before[.inboundTranslated], sourceLocation: sourceLocation)
    }

    private func forwarding() -> NATTranslator {
        makeTranslator { $0.forwards = [PortForward("udp:5353=192.0.2.10:53")!, PortForward("tcp:8080=192.0.2.10:80")!] }
    }

    @Test("the external address as source from the WAN: dropped, to a forward, a mapping, a hairpin session or anywhere")
    func externalAddressAsSource() {
        let nat = forwarding()
        expectDropped(nat, PacketBuilder.udp(Net.external, 40000, Net.external, 5353), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.tcp(Net.external, 40000, Net.external, 8080), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.icmp(Net.external, Net.external, type: 0, identifier: 1), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.udp(Net.external, 40000, Net.outsider, 53), .inbound, .spoofedSource)

        // The case that matters most: a hairpin session's remote IS the external address, so
        // without the check this packet from the WAN would be delivered to hostA as if hostB sent it.
        var open = PacketBuilder.udp(Net.hostB, 6000, Net.external, 5353)
        #expect(nat.run(&open, .hairpin) == .acceptRewritten)
        #expect(destinationAddress(open) == Net.hostA)
        var reply = PacketBuilder.udp(Net.hostA, 53, Net.external, 6000)
        #expect(nat.run(&reply, .hairpin) == .acceptRewritten) // hostB's mapping has a session with external:5353
        expectDropped(nat, PacketBuilder.udp(Net.external, 5353, Net.external, 6000), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.udp(Net.external, 6000, Net.external, 5353), .inbound, .spoofedSource)
        #expect(nat.counters.drops(.spoofedSource) == 6)
    }

    @Test("a LAN source from the WAN: dropped, whether to the external address or straight to a LAN address")
    func lanSourceFromWAN() {
        let nat = forwarding()
        expectDropped(nat, PacketBuilder.udp(Net.hostB, 40000, Net.external, 5353), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.tcp(Net.hostC, 40000, Net.external, 8080), .inbound, .spoofedSource)
        // Both the source and the destination are inside: the source decides (it is checked first).
        expectDropped(nat, PacketBuilder.udp(Net.hostB, 40000, Net.hostA, 53), .inbound, .spoofedSource)
        // With endpoint-independent filtering an open mapping would let it in.
        let eif = makeTranslator { $0.filtering = .endpointIndependent }
        var out = PacketBuilder.udp(Net.hostA, 40000, Net.remote, 3478)
        #expect(eif.run(&out, .outbound) == .acceptRewritten)
        expectDropped(eif, PacketBuilder.udp(Net.hostB, 1234, Net.external, 40000), .inbound, .spoofedSource)
        // An ICMP error "from" a LAN host about hostA's live session.
        let quoted = Array(PacketBuilder.udp(Net.external, 40000, Net.remote, 3478).prefix(28))
        expectDropped(eif, PacketBuilder.icmp(Net.hostB, Net.external, type: 3, code: 3, identifier: 0, sequence: 0, payload: quoted),
                      .inbound, .spoofedSource)
        // The same error from the remote is translated: the check is about the source only.
        var error = PacketBuilder.icmp(Net.remote, Net.external, type: 3, code: 3, identifier: 0, sequence: 0, payload: quoted)
        #expect(eif.run(&error, .inbound) == .acceptRewritten)
        #expect(destinationAddress(error) == Net.hostA)
        #expect(Verify.transportChecksumValid(error) && Verify.ipHeaderChecksumValid(error))
    }

    @Test("without --lan prefixes every source counts as internal: only the external address and martians are judged")
    func noPrefixes() {
        let nat = makeTranslator(internalPrefixes: []) { $0.forwards = [PortForward("udp:5353=192.0.2.10:53")!] }
        var fromLANRange = PacketBuilder.udp(Net.hostB, 40000, Net.external, 5353)
        #expect(nat.run(&fromLANRange, .inbound) == .acceptRewritten)
        #expect(destinationAddress(fromLANRange) == Net.hostA)
        expectDropped(nat, PacketBuilder.udp(Net.external, 40000, Net.external, 5353), .inbound, .spoofedSource)
        expectDropped(nat, PacketBuilder.udp(IPv4Bytes(127, 0, 0, 1), 40000, Net.external, 5353), .inbound, .martianSource)
    }

    @Test(arguments: [
        IPv4Bytes(0, 0, 0, 0), IPv4Bytes(0, 1, 2, 3), IPv4Bytes(127, 0, 0, 1), IPv4Bytes(127, 255, 255, 254),
        IPv4Bytes(224, 0, 0, 1), IPv4Bytes(239, 255, 255, 250), IPv4Bytes(255, 255, 255, 255),
    ])
    func martianSources(source: IPv4Bytes) {
        let nat = forwarding()
        expectDropped(nat, PacketBuilder.udp(source, 40000, Net.external, 5353), .inbound, .martianSource)
        expectDropped(nat, PacketBuilder.tcp(source, 40000, Net.external, 8080), .inbound, .martianSource)
        expectDropped(nat, PacketBuilder.udp(source, 40000, Net.outsider, 53), .inbound, .martianSource)
        // Also before the WAN has an address.
        let noAddress = makeTranslator(external: nil)
        expectDropped(noAddress, PacketBuilder.udp(source, 68, Net.remote, 67), .inbound, .martianSource)
    }

    @Test("neighbours of the martian ranges are ordinary sources")
    func martianBoundaries() {
        let nat = forwarding()
        for source in [IPv4Bytes(1, 0, 0, 0), IPv4Bytes(126, 255, 255, 255), IPv4Bytes(128, 0, 0, 0),
                       IPv4Bytes(223, 255, 255, 255), IPv4Bytes(240, 0, 0, 1), IPv4Bytes(255, 255, 255, 254)] {
            var p = PacketBuilder.udp(source, 40000, Net.external, 5353)
            #expect(nat.run(&p, .inbound) == .acceptRewritten, "\(source)")
            #expect(destinationAddress(p) == Net.hostA)
        }
        #expect(nat.counters.totalDrops == 0)
        #expect(nat.counters[.sessionsOpenedInbound] == 6)
    }

    @Test("legitimate traffic is untouched by the check: a reply, a forward from outside")
    func legitimateTrafficStillFlows() {
        let nat = forwarding()
        var out = PacketBuilder.udp(Net.hostB, 40000, Net.remote, 53)
        #expect(nat.run(&out, .outbound) == .acceptRewritten)
        var reply = PacketBuilder.udp(Net.remote, 53, Net.external, sourcePort(out))
        #expect(nat.run(&reply, .inbound) == .acceptRewritten)
        #expect(destinationAddress(reply) == Net.hostB && destinationPort(reply) == 40000)
        #expect(Verify.transportChecksumValid(reply))
        var forwarded = PacketBuilder.tcp(Net.outsider, 50000, Net.external, 8080)
        #expect(nat.run(&forwarded, .inbound) == .acceptRewritten)
        #expect(destinationAddress(forwarded) == Net.hostA && destinationPort(forwarded) == 80)
        #expect(nat.counters.totalDrops == 0)
    }

    // The LAN side claiming the external address. The translator cannot tell these from the
    // router's own packets, so they are passed as before; what stops a LAN host's forwarded
    // packets with the router's address is the engine (NF_INET_FORWARD, spoofed_source).

    @Test("hairpin direction, source = external address: passed (the router talking to itself over lo)")
    func hairpinFromExternalAddressPasses() {
        let nat = makeTranslator(internalPrefixes: []) { $0.forwards = [PortForward("tcp:8080=192.0.2.10:80")!] }
        let original = PacketBuilder.tcp(Net.external, 40000, Net.external, 8080)
        expectUnchanged(nat, original, .hairpin)
        #expect(nat.counters[.hairpinPassed] == 1 && nat.counters.totalDrops == 0 && nat.sessionCount == 0)
    }

    @Test("outbound direction, source = external address: the router's ICMP is passed")
    func outboundFromExternalAddressPasses() {
        let nat = makeTranslator()
        let original = PacketBuilder.icmp(Net.external, Net.remote, type: 3, code: 3, identifier: 0, sequence: 0,
                                          payload: Array(PacketBuilder.udp(Net.remote, 53, Net.external, 40000).prefix(28)))
        expectUnchanged(nat, original, .outbound)
        #expect(nat.counters[.outboundNotInternal] == 1 && nat.counters.totalDrops == 0)
    }
}

extension SpoofingTests {
    @Test("the engine's FORWARD-hook refusals are counted as spoofed_source")
    func forwardRefusalIsCounted() {
        let nat = makeTranslator()
        #expect(nat.refuseSpoofedForward() == .drop(.spoofedSource))
        #expect(nat.refuseSpoofedForward() == .drop(.spoofedSource))
        #expect(nat.counters.drops(.spoofedSource) == 2 && nat.counters.totalDrops == 2)
    }

    @Test("fragments are screened by their IP header before reassembly: spoofed and martian sources from the WAN only")
    func fragmentsAreScreenedBeforeReassembly() {
        let nat = forwarding()
        func screen(_ source: IPv4Bytes, _ destination: IPv4Bytes, _ direction: PacketDirection) -> DropReason? {
            // A first fragment (MF set, offset 0) of a UDP datagram.
            var p = PacketBuilder.udp(source, 40000, destination, 5353, payload: [UInt8](repeating: 0x61, count: 64),
                                      ip: IPv4Fields(identification: 77, flagsAndFragment: 0x2000))
            let before = p
            let reason = p.withUnsafeMutableBytes { nat.screenFragment($0, direction: direction) }
            #expect(p == before, "screening never changes the bytes")
            return reason
        }
        #expect(screen(Net.hostB, Net.external, .inbound) == .spoofedSource)
        #expect(screen(Net.external, Net.external, .inbound) == .spoofedSource)
        #expect(screen(IPv4Bytes(127, 0, 0, 1), Net.external, .inbound) == .martianSource)
        // A remote's fragment straight to a LAN address (with --lan), as translateInbound judges it.
        #expect(screen(Net.remote, Net.hostA, .inbound) == .inboundToInternalAddress)
        #expect(nat.counters.drops(.spoofedSource) == 2 && nat.counters.drops(.martianSource) == 1)
        #expect(nat.counters.drops(.inboundToInternalAddress) == 1)
        // A real remote's fragments to the WAN address or elsewhere, and everything from
        // inside, go on to the reassembler.
        #expect(screen(Net.remote, Net.external, .inbound) == nil)
        #expect(screen(Net.remote, Net.outsider, .inbound) == nil)
        #expect(screen(Net.hostA, Net.remote, .outbound) == nil)
        #expect(screen(Net.hostA, Net.external, .hairpin) == nil)
        #expect(nat.counters.totalDrops == 4)
        #expect(nat.sessionCount == 0)
        // Without --lan there is no LAN prefix to judge a destination by (README, Inbound).
        let open = makeTranslator(internalPrefixes: [])
        var p = PacketBuilder.udp(Net.remote, 40000, Net.hostA, 53, ip: IPv4Fields(flagsAndFragment: 0x2000))
        #expect(p.withUnsafeMutableBytes { open.screenFragment($0, direction: .inbound) } == nil)
        #expect(open.counters.totalDrops == 0)
    }
}

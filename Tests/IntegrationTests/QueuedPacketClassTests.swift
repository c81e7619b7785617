import Foundation
import NATCore
import NetfilterQueue
import Testing
@testable import Masqd
@testable import MasqdLab

/// Issue #20 item 11: what the queue worker does with a packet by its hook and hardware
/// protocol alone (QueueWorker-Packet.swift). Only the hooks and protocol our rules queue are
/// translated; the rest is dropped and counted, never accepted unchanged (fail-closed).
/// The hook half is also shown with real traffic (a foreign rule queueing at INPUT); the
/// hardware-protocol half only here: making br_netfilter queue VLAN or PPPoE frames needs a
/// bridge set up for it, and the decision is the whole of the change.
@Suite struct QueuedPacketClassTests {
    let wan: UInt32 = 7

    @Test func theRulesHooksAreTranslated() {
        #expect(QueuedPacketClass.of(hook: .preRouting, hardwareProtocol: .ipv4, inputInterfaceIndex: wan, wanIndex: wan) == .translate(.inbound))
        #expect(QueuedPacketClass.of(hook: .preRouting, hardwareProtocol: .ipv4, inputInterfaceIndex: 3, wanIndex: wan) == .translate(.hairpin))
        #expect(QueuedPacketClass.of(hook: .postRouting, hardwareProtocol: .ipv4, inputInterfaceIndex: 0, wanIndex: wan) == .translate(.outbound))
        #expect(QueuedPacketClass.of(hook: .forward, hardwareProtocol: .ipv4, inputInterfaceIndex: 3, wanIndex: wan) == .spoofedForward)
        // The kernel's numbering (include/uapi/linux/netfilter.h), which the raw values must keep.
        #expect([NetfilterHook.preRouting, .localIn, .forward, .localOut, .postRouting].map(\.rawValue) == [0, 1, 2, 3, 4])
        #expect(EtherType.ipv4.rawValue == 0x0800 && EtherType.vlan.rawValue == 0x8100 && EtherType.pppoeSession.rawValue == 0x8864)
    }

    @Test func otherHooksAreDropped() {
        for hook: UInt8 in [1, 3, 5, 255] {
            #expect(QueuedPacketClass.of(hook: NetfilterHook(rawValue: hook), hardwareProtocol: .ipv4, inputInterfaceIndex: wan, wanIndex: wan) == .unexpectedHook,
                    "hook \(hook)")
        }
    }

    @Test func otherHardwareProtocolsAreDroppedWhateverTheHook() {
        // 802.1Q VLAN, PPPoE session, IPv6, ARP, none.
        for proto: UInt16 in [0x8100, 0x8864, 0x86dd, 0x0806, 0] {
            for hook in [NetfilterHook.preRouting, .forward, .postRouting] {
                #expect(QueuedPacketClass.of(hook: hook, hardwareProtocol: EtherType(rawValue: proto), inputInterfaceIndex: wan, wanIndex: wan) == .notIPv4,
                        "hook \(hook), hardware protocol 0x\(String(proto, radix: 16))")
            }
        }
    }

    @Test("a foreign rule queueing h1's pings to the router at INPUT: they are dropped and counted as drop_unexpected_hook, not passed")
    func packetsFromAnUnexpectedHookAreDropped() throws {
        let queue = Integration.queue(92)
        try Integration.withEngine("uha", queue: queue) { lab, masqd in
            let router = LabTopology.routerLANAddress
            let before = try Frag.ping(lab, from: .host1, to: router, size: 56, count: 2)
            #expect(before.received == 2, "h1 → router ping before the foreign rule:\n\(before.result.summary)")
            try lab.check(.router, ["iptables", "-w", "-t", "mangle", "-I", "INPUT", "1", "-p", "icmp", "-s", LabTopology.host1Address,
                                    "-j", "NFQUEUE", "--queue-num", String(queue)])
            let start = try Semantics.stats(lab, masqd)
            let during = try Frag.ping(lab, from: .host1, to: router, size: 56, count: 3)
            let after = try Semantics.stats(lab, masqd)
            #expect(during.received == 0, "pings queued at INPUT must not be accepted unchanged:\n\(during.result.summary)")
            let dropped = (after["drop_unexpected_hook"] ?? 0) - (start["drop_unexpected_hook"] ?? 0)
            #expect(dropped >= 3, "drop_unexpected_hook moved by \(dropped)")
        }
    }
}

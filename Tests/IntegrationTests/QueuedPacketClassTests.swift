import NATCore
import Testing
@testable import Masqd

/// Issue #20 item 11: what the queue worker does with a packet by its hook and hardware
/// protocol alone (QueueWorker-Packet.swift). Only the hooks and protocol our rules queue are
/// translated; the rest is dropped and counted, never accepted unchanged (fail-closed).
/// No integration test: making br_netfilter queue VLAN or PPPoE frames needs a bridge with
/// VLAN filtering set up for it; the decision is the whole of the change.
@Suite struct QueuedPacketClassTests {
    let wan: UInt32 = 7

    @Test func theRulesHooksAreTranslated() {
        #expect(QueuedPacketClass.of(hook: 0, hardwareProtocol: 0x0800, inputInterfaceIndex: wan, wanIndex: wan) == .translate(.inbound))
        #expect(QueuedPacketClass.of(hook: 0, hardwareProtocol: 0x0800, inputInterfaceIndex: 3, wanIndex: wan) == .translate(.hairpin))
        #expect(QueuedPacketClass.of(hook: 4, hardwareProtocol: 0x0800, inputInterfaceIndex: 0, wanIndex: wan) == .translate(.outbound))
        #expect(QueuedPacketClass.of(hook: 2, hardwareProtocol: 0x0800, inputInterfaceIndex: 3, wanIndex: wan) == .spoofedForward)
    }

    @Test func otherHooksAreDropped() {
        for hook: UInt8 in [1, 3, 5, 255] {
            #expect(QueuedPacketClass.of(hook: hook, hardwareProtocol: 0x0800, inputInterfaceIndex: wan, wanIndex: wan) == .unexpectedHook,
                    "hook \(hook)")
        }
    }

    @Test func otherHardwareProtocolsAreDroppedWhateverTheHook() {
        // 802.1Q VLAN, PPPoE session, IPv6, ARP, none.
        for proto: UInt16 in [0x8100, 0x8864, 0x86dd, 0x0806, 0] {
            for hook: UInt8 in [0, 2, 4] {
                #expect(QueuedPacketClass.of(hook: hook, hardwareProtocol: proto, inputInterfaceIndex: wan, wanIndex: wan) == .notIPv4,
                        "hook \(hook), hardware protocol 0x\(String(proto, radix: 16))")
            }
        }
    }
}

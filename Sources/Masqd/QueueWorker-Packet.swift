import NATCore
import NetfilterQueue

// One packet from receive to verdict: direction by hook and input interface, then
// PacketPath (fragments to the reassembler, everything else to the translator) decides which
// bytes go out for which packet. Called with the lock held.

/// What a queued packet's hook and hardware protocol say, before its bytes are read.
/// Anything the rules do not send here is dropped (fail-closed): accepted, it would leave
/// untranslated.
enum QueuedPacketClass: Equatable {
    case translate(PacketDirection)
    /// NF_INET_FORWARD: only the spoofing rule queues there (SteeringRules).
    case spoofedForward
    /// NF_INET_LOCAL_OUT: only the redirect rule queues there (a local proxy's replies).
    case redirectReply
    /// Hardware protocol other than IPv4: VLAN (0x8100) or PPPoE (0x8864) frames queued
    /// through br_netfilter, or a foreign rule.
    case notIPv4
    /// LOCAL_IN, LOCAL_OUT or anything else: no rule of ours queues there.
    case unexpectedHook

    static func of(hook: NetfilterHook, hardwareProtocol: EtherType, inputInterfaceIndex: UInt32, wanIndex: UInt32,
                   redirects: Bool = false) -> QueuedPacketClass {
        guard hardwareProtocol == .ipv4 else { return .notIPv4 }
        switch hook {
        case .preRouting: return .translate(inputInterfaceIndex == wanIndex ? .inbound : .hairpin)
        case .postRouting: return .translate(.outbound)
        case .forward: return .spoofedForward
        case .localOut where redirects: return .redirectReply
        default: return .unexpectedHook
        }
    }
}

extension QueueWorker {
    @inline(__always)
    func handle(_ packet: QueuedPacket, now: NATTime) {
        counters[.packetsReceived] &+= 1
        if packet.isTruncated {
            counters[.truncatedDropped] &+= 1
            verdict(packet, .drop, rewritten: false)
            return
        }
        let direction: PacketDirection
        switch QueuedPacketClass.of(hook: packet.hook, hardwareProtocol: packet.hardwareProtocol,
                                    inputInterfaceIndex: packet.inputInterfaceIndex, wanIndex: wanIndex,
                                    redirects: !translator.configuration.redirects.isEmpty) {
        case .translate(let d) where standby:
            standbyVerdict(packet, direction: d)
            return
        case .translate(let d): direction = d
        case .spoofedForward:
            _ = translator.refuseSpoofedForward()
            verdict(packet, .drop, rewritten: false)
            return
        case .redirectReply:
            let checksum = PacketChecksumState(checksumNotReady: packet.checksumNotReady, isGSO: packet.isGSO)
            let rewritten = translator.translateRedirectReply(packet.payload, checksum: checksum, now: now) == .acceptRewritten
            verdict(packet, .accept, rewritten: rewritten)
            return
        case .notIPv4:
            counters[.notIPv4Dropped] &+= 1
            verdict(packet, .drop, rewritten: false)
            return
        case .unexpectedHook:
            counters[.unexpectedHookDropped] &+= 1
            verdict(packet, .drop, rewritten: false)
            return
        }
        if let fastPath = events.fastPath, direction == .inbound, FastPath.isTCPFinOrReset(packet.payload) {
            fastPath.resyncWindow(packet.payload, translator: translator)
        }
        let checksum = PacketChecksumState(checksumNotReady: packet.checksumNotReady, isGSO: packet.isGSO)
        let disposition = PacketPath.process(
            packet.payload, token: packet.id, direction: direction, checksum: checksum, now: now,
            translator: translator, reassembler: reassembler, inputInterface: packet.inputInterfaceIndex) { dropHeld($0) }
        switch disposition {
        case .accept(let rewritten): verdict(packet, .accept, rewritten: rewritten)
        case .send(let bytes, let token):
            counters[.verdictAcceptRewritten] &+= 1
            queue.setVerdict(packetID: token, .accept, payload: bytes)
        case .held: break
        case .drop(let token, _): dropHeld(token)
        }
    }

    @inline(__always)
    func dropHeld(_ token: UInt32) {
        counters[.verdictDrop] &+= 1
        queue.setVerdict(packetID: token, .drop, payload: nil)
    }

    @inline(__always)
    func verdict(_ packet: QueuedPacket, _ verdict: PacketVerdict, rewritten: Bool) {
        switch verdict {
        case .drop: counters[.verdictDrop] &+= 1
        default: if rewritten { counters[.verdictAcceptRewritten] &+= 1 } else { counters[.verdictAccept] &+= 1 }
        }
        queue.setVerdict(packetID: packet.id, verdict, payload: rewritten ? UnsafeRawBufferPointer(packet.payload) : nil)
    }
}

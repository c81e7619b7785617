import NATCore
import NetfilterQueue

// One packet from receive to verdict: direction by hook and input interface, then
// PacketPath (fragments to the reassembler, everything else to the translator) decides which
// bytes go out for which packet. Called with the lock held.

extension QueueWorker {
    @inline(__always)
    func handle(_ packet: QueuedPacket, now: NATTime) {
        counters.packetsReceived &+= 1
        if packet.isTruncated {
            counters.truncatedDropped &+= 1
            verdict(packet, .drop, rewritten: false)
            return
        }
        guard packet.hardwareProtocol == 0x0800 else {
            counters.notIPv4Passed &+= 1
            verdict(packet, .accept, rewritten: false)
            return
        }
        let direction: PacketDirection
        switch packet.hook {
        case 0: direction = packet.inputInterfaceIndex == wanIndex ? .inbound : .hairpin // NF_INET_PRE_ROUTING
        case 4: direction = .outbound  // NF_INET_POST_ROUTING
        case 2: // NF_INET_FORWARD: only the spoofing rule queues here (SteeringRules)
            _ = translator.refuseSpoofedForward()
            verdict(packet, .drop, rewritten: false)
            return
        default:
            counters.unexpectedHookPassed &+= 1
            verdict(packet, .accept, rewritten: false)
            return
        }
        let checksum = PacketChecksumState(checksumNotReady: packet.checksumNotReady, isGSO: packet.isGSO)
        let disposition = PacketPath.process(
            packet.payload, token: packet.id, direction: direction, checksum: checksum, now: now,
            translator: translator, reassembler: reassembler) { dropHeld($0) }
        switch disposition {
        case .accept(let rewritten): verdict(packet, .accept, rewritten: rewritten)
        case .send(let bytes, let token):
            counters.verdictAcceptRewritten &+= 1
            queue.setVerdict(packetID: token, .accept, payload: bytes)
        case .held: break
        case .drop(let token, _): dropHeld(token)
        }
    }

    @inline(__always)
    func dropHeld(_ token: UInt32) {
        counters.verdictDrop &+= 1
        queue.setVerdict(packetID: token, .drop, payload: nil)
    }

    @inline(__always)
    func verdict(_ packet: QueuedPacket, _ verdict: PacketVerdict, rewritten: Bool) {
        switch verdict {
        case .drop: counters.verdictDrop &+= 1
        default: if rewritten { counters.verdictAcceptRewritten &+= 1 } else { counters.verdictAccept &+= 1 }
        }
        queue.setVerdict(packetID: packet.id, verdict, payload: rewritten ? UnsafeRawBufferPointer(packet.payload) : nil)
    }
}

import NATCore
import NetfilterQueue

// One packet from receive to verdict: direction by hook and input interface, fragments to
// the reassembler, everything else to the translator. Called with the lock held.

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
        if QueueWorker.isFragment(packet.payload) {
            handleFragment(packet, direction: direction, now: now)
            return
        }
        let checksum = PacketChecksumState(checksumNotReady: packet.checksumNotReady, isGSO: packet.isGSO)
        switch translator.translate(packet.payload, direction: direction, checksum: checksum, now: now) {
        case .accept: verdict(packet, .accept, rewritten: false)
        case .acceptRewritten: verdict(packet, .accept, rewritten: true)
        case .acceptReplaced(let bytes):
            counters.verdictAcceptRewritten &+= 1
            queue.setVerdict(packetID: packet.id, .accept, payload: UnsafeRawBufferPointer(bytes))
        case .drop: verdict(packet, .drop, rewritten: false)
        }
    }

    /// Fragments are held (no verdict) until their datagram is whole; then the datagram is
    /// translated and travels as the payload of its first fragment's verdict, every other
    /// fragment is dropped, and the kernel refragments on output (KERNEL-FACTS fact 5).
    func handleFragment(_ packet: QueuedPacket, direction: PacketDirection, now: NATTime) {
        let outcome = reassembler.offer(UnsafeRawBufferPointer(packet.payload), token: packet.id, now: now) { dropHeld($0) }
        switch outcome {
        case .held:
            break
        case .complete(let datagram, let acceptToken):
            // Always sent with its payload, translated or not: the other fragments are gone.
            switch translator.translate(datagram, direction: direction, checksum: PacketChecksumState(), now: now) {
            case .accept, .acceptRewritten:
                counters.verdictAcceptRewritten &+= 1
                queue.setVerdict(packetID: acceptToken, .accept, payload: UnsafeRawBufferPointer(datagram))
            case .acceptReplaced(let bytes):
                counters.verdictAcceptRewritten &+= 1
                queue.setVerdict(packetID: acceptToken, .accept, payload: UnsafeRawBufferPointer(bytes))
            case .drop:
                dropHeld(acceptToken)
            }
        case .drop:
            verdict(packet, .drop, rewritten: false)
        }
    }

    @inline(__always)
    func dropHeld(_ token: UInt32) {
        counters.verdictDrop &+= 1
        queue.setVerdict(packetID: token, .drop, payload: nil)
    }

    /// True for an IPv4 packet with MF set or a non-zero offset (malformed ones go to the translator).
    @inline(__always)
    static func isFragment(_ bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= 20, bytes[0] >> 4 == 4 else { return false }
        return (UInt16(bytes[6]) << 8 | UInt16(bytes[7])) & 0x3fff != 0
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

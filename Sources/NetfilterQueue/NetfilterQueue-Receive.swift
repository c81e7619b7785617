import CNetfilterQueue
import Glibc

extension NetfilterQueue {
    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: not at all) for a first datagram,
    /// then takes up to `batchSize` datagrams with one recvmmsg and parses them.
    /// Returns the number of packets, also in `packetCount`; read them with `packet(at:)`.
    /// Refused verdicts (NLMSG_ERROR) are counted and queued for `drainRefusedVerdicts`.
    /// EINTR, a timeout and ENOBUFS (counted in `receiveOverruns`) return 0.
    /// All packets of the previous receive become invalid.
    public func receive(timeoutMilliseconds: Int32) throws(NetfilterQueueError) -> Int {
        packetCount = 0
        // Waiting is one blocking recvmmsg (MSG_WAITFORONE under SO_RCVTIMEO), not poll and
        // then recvmmsg: one system call less per wake-up, which shows in ping-pong latency.
        if timeoutMilliseconds != 0, timeoutMilliseconds != receiveTimeout {
            let result = cnfq_set_receive_timeout(fileDescriptor, max(timeoutMilliseconds, 0))
            if result < 0 { throw .system(operation: "set the receive timeout of queue \(configuration.queueNumber)", errno: -result) }
            receiveTimeout = timeoutMilliseconds
        }
        let received = cnfq_receive_batch(fileDescriptor, receiveVector, UInt32(slotCount), timeoutMilliseconds != 0 ? 1 : 0)
        if received < 0 {
            switch -received {
            case EAGAIN, EINTR:
                return 0
            case ENOBUFS:
                statistics[.receiveOverruns] &+= 1
                return 0
            default:
                throw .system(operation: "receive from queue \(configuration.queueNumber)", errno: -received)
            }
        }
        for index in 0..<Int(received) {
            let datagram = receiveBase + index * Self.slotSize
            if cnfq_received_truncated(receiveVector, UInt32(index)) != 0 {
                statistics[.malformedMessages] &+= 1
                continue
            }
            parseDatagram(datagram, length: Int(cnfq_received_length(receiveVector, UInt32(index))))
        }
        statistics[.packetsReceived] &+= UInt64(packetCount)
        return packetCount
    }

    /// The packet at `index` (< `packetCount`) of the last receive.
    @inline(__always)
    public func packet(at index: Int) -> QueuedPacket {
        precondition(index >= 0 && index < packetCount, "packet index out of range")
        return packets[index]
    }

    /// Calls `body(packetID, errno)` for each verdict the kernel refused since the last call,
    /// oldest first. Refusals beyond the ring's 256 entries are only counted
    /// (`statistics[.refusedVerdictOverflows]`).
    public func drainRefusedVerdicts(_ body: (UInt32, Int32) -> Void) {
        while refusedCount > 0 {
            let entry = refused[refusedStart]
            refusedStart = (refusedStart + 1) % Self.refusedCapacity
            refusedCount -= 1
            body(entry.packetID, entry.errno)
        }
    }

    private func parseDatagram(_ datagram: UnsafeMutableRawPointer, length: Int) {
        var offset = 0
        var message: UnsafeMutableRawPointer?
        while true {
            let kind = cnfq_message_next(datagram, length, &offset, &message)
            if kind == Int32(CNFQ_MESSAGE_END) { return }
            if kind == Int32(CNFQ_MESSAGE_PACKET) {
                var parsed = cnfq_packet()
                guard cnfq_parse_packet(message, &parsed) == 0 else {
                    statistics[.malformedMessages] &+= 1
                    continue
                }
                store(parsed)
            } else if kind == Int32(CNFQ_MESSAGE_ERROR) {
                var original: UInt32 = 0
                let code = cnfq_parse_error(message, &original)
                if code != 0 { recordRefusal(packetID: original, errno: code) }
            }
        }
    }

    @inline(__always)
    private func store(_ parsed: cnfq_packet) {
        guard packetCount < slotCount else {
            // More packet messages than slots (the kernel sends one per datagram, so this
            // should not happen): no room to hand it out, so it must not wait forever.
            statistics[.packetsDroppedByBinding] &+= 1
            setVerdict(packetID: parsed.id, .drop, payload: nil)
            return
        }
        let payload = UnsafeMutableRawBufferPointer(start: parsed.payload, count: Int(parsed.payload_length))
        let original = parsed.has_cap_length != 0 ? Int(parsed.cap_length) : payload.count
        let truncated = original > payload.count
        if truncated { statistics[.truncatedPackets] &+= 1 }
        packets[packetCount] = QueuedPacket(
            id: parsed.id, hook: NetfilterHook(rawValue: parsed.hook), hardwareProtocol: EtherType(rawValue: parsed.hardware_protocol),
            inputInterfaceIndex: parsed.input_interface, outputInterfaceIndex: parsed.output_interface,
            mark: parsed.mark, payload: payload, originalLength: original,
            checksumNotReady: parsed.skb_info & UInt32(CNFQ_SKB_CSUMNOTREADY) != 0,
            isGSO: parsed.skb_info & UInt32(CNFQ_SKB_GSO) != 0)
        packetCount += 1
    }

    private func recordRefusal(packetID: UInt32, errno code: Int32) {
        statistics[.netlinkErrors] &+= 1
        statistics.lastNetlinkErrno = code
        statistics.lastErrorPacketID = packetID
        guard refusedCount < Self.refusedCapacity else {
            statistics[.refusedVerdictOverflows] &+= 1
            return
        }
        refused[(refusedStart + refusedCount) % Self.refusedCapacity] = RefusedVerdict(packetID: packetID, errno: code)
        refusedCount += 1
    }
}

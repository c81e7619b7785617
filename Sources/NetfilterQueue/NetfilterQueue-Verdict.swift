import CNetfilterQueue
import Glibc

extension NetfilterQueue {
    /// Appends one NFQNL_MSG_VERDICT for `packetID` to the batch (nlmsg_seq = packetID, so a
    /// refusal can be tied to the packet). With `payload`, the payload replaces the whole packet.
    /// Nothing is sent until `flushVerdicts()`, unless the batch buffer is full: then it is
    /// flushed first, and a failure of that flush is thrown by the next `flushVerdicts()`.
    /// A payload over 65531 bytes cannot be carried: the packet is dropped and counted in
    /// `oversizedVerdictPayloads`. A payload without a base address counts as no payload.
    public func setVerdict(packetID: UInt32, _ verdict: PacketVerdict, payload: UnsafeRawBufferPointer?) {
        var code = verdict.kernelValue
        var bytes = payload?.baseAddress
        var count = UInt32(truncatingIfNeeded: payload?.count ?? 0)
        if let payload, payload.count > Int(CNFQ_MAX_COPY_RANGE) {
            statistics[.oversizedVerdictPayloads] &+= 1
            code = PacketVerdict.drop.kernelValue
            bytes = nil
            count = 0
        }
        let queue = configuration.queueNumber
        var used = cnfq_put_verdict(
            verdictBuffer + verdictLength, verdictCapacity - verdictLength, queue, packetID, code, bytes, count)
        if used == 0 {
            do {
                try sendVerdicts()
            } catch {
                if deferredSendError == nil { deferredSendError = error }
            }
            used = cnfq_put_verdict(verdictBuffer, verdictCapacity, queue, packetID, code, bytes, count)
        }
        verdictLength += used
        pendingVerdicts += 1
    }

    /// Sends all appended verdicts with one sendto (nothing if there are none). Throws the
    /// failure of this send, or of an earlier automatic flush from `setVerdict`.
    public func flushVerdicts() throws(NetfilterQueueError) {
        try sendVerdicts()
        if let error = deferredSendError {
            deferredSendError = nil
            throw error
        }
    }

    func sendVerdicts() throws(NetfilterQueueError) {
        guard verdictLength > 0 else { return }
        let count = pendingVerdicts
        var sent: Int
        repeat {
            sent = cnfq_send(fileDescriptor, verdictBuffer, verdictLength)
        } while sent == -Int(EINTR)
        verdictLength = 0
        pendingVerdicts = 0
        if sent < 0 {
            statistics[.verdictsLost] &+= UInt64(count)
            throw .system(operation: "send verdicts to queue \(configuration.queueNumber)", errno: Int32(-sent))
        }
        statistics[.verdictsSent] &+= UInt64(count)
        statistics[.verdictMessagesSent] &+= 1
    }
}

/// How one NFQUEUE is bound and configured. Defaults suit a NAT engine.
public struct NetfilterQueueConfiguration: Sendable, Equatable {
    /// The `--queue-num` of the iptables NFQUEUE rule.
    public var queueNumber: UInt16
    /// Bytes of each packet copied to user space (the kernel caps this at 65531).
    public var copyRange: UInt32 = 0xffff
    /// NFQA_CFG_QUEUE_MAXLEN: packets the kernel holds waiting for a verdict.
    public var maxQueueLength: UInt32 = 4096
    /// NFQA_CFG_F_GSO: take GSO super-packets instead of having the kernel segment them.
    public var gso: Bool = true
    /// NFQA_CFG_F_FAIL_OPEN: accept (untranslated!) when the queue is full. Off: wrong for a NAT.
    public var failOpen: Bool = false
    /// Socket receive buffer (SO_RCVBUFFORCE, falling back to SO_RCVBUF when not permitted).
    public var receiveBufferBytes: Int32 = 8 << 20
    /// Most packets taken per `receive()` (one recvmmsg); also sizes the verdict batch buffer.
    public var batchSize: Int = 64

    public init(queueNumber: UInt16) {
        self.queueNumber = queueNumber
    }
}

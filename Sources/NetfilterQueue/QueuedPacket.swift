/// One packet from the queue: a view into the receive buffer, valid until the next `receive()`.
public struct QueuedPacket {
    /// Kernel packet id; pass it to `setVerdict(packetID:_:payload:)`.
    public var id: UInt32
    /// The netfilter hook the packet was queued from.
    public var hook: NetfilterHook
    /// Hardware protocol (IPv4 for routed packets; others only through br_netfilter).
    public var hardwareProtocol: EtherType
    /// Input interface index, 0 if absent.
    public var inputInterfaceIndex: UInt32
    /// Output interface index, 0 if absent.
    public var outputInterfaceIndex: UInt32
    /// Packet mark (0 if absent).
    public var mark: UInt32
    /// The packet bytes, IP header first; writable in place. Empty if the kernel sent none.
    public var payload: UnsafeMutableRawBufferPointer
    /// The packet's real length: NFQA_CAP_LEN if present, else `payload.count`.
    public var originalLength: Int
    /// `originalLength > payload.count`: only part of the packet was copied. Never pass such a
    /// packet on untranslated; it cannot be rewritten either.
    public var isTruncated: Bool
    /// NFQA_SKB_CSUMNOTREADY: the L4 checksum field holds only the pseudo-header sum.
    public var checksumNotReady: Bool
    /// NFQA_SKB_GSO: a GSO super-packet.
    public var isGSO: Bool

    public init(
        id: UInt32, hook: NetfilterHook = .preRouting, hardwareProtocol: EtherType = .ipv4,
        inputInterfaceIndex: UInt32 = 0, outputInterfaceIndex: UInt32 = 0, mark: UInt32 = 0,
        payload: UnsafeMutableRawBufferPointer, originalLength: Int? = nil,
        checksumNotReady: Bool = false, isGSO: Bool = false
    ) {
        self.id = id
        self.hook = hook
        self.hardwareProtocol = hardwareProtocol
        self.inputInterfaceIndex = inputInterfaceIndex
        self.outputInterfaceIndex = outputInterfaceIndex
        self.mark = mark
        self.payload = payload
        self.originalLength = originalLength ?? payload.count
        self.isTruncated = self.originalLength > payload.count
        self.checksumNotReady = checksumNotReady
        self.isGSO = isGSO
    }
}

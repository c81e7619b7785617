import CNetfilterQueue
import Glibc

/// One bound NFQUEUE: owns the netlink socket and all buffers. Use it from one thread.
///
/// Per packet nothing is allocated: receive slots, the packet table, the verdict batch buffer
/// and the refused-verdict ring are allocated once in `init` and freed in `deinit`.
///
/// The mutable scalars are `@exclusivity(unchecked)`: one thread owns the queue and no method
/// holds an access across another, so the runtime's per-access bookkeeping is pure cost on
/// the receive and verdict path.
public final class NetfilterQueue {
    /// The configuration this queue was opened with.
    public let configuration: NetfilterQueueConfiguration

    let socket: OpaquePointer
    /// The netlink socket; poll it for readability if you run your own event loop.
    public let fileDescriptor: Int32
    @exclusivity(unchecked) var isBound = false

    // Receiving: `slotCount` slots of `slotSize` bytes, one recvmmsg over all of them.
    static let slotSize = 0xffff + 4096
    let slotCount: Int
    let receiveBase: UnsafeMutableRawPointer
    let receiveVector: OpaquePointer
    let packets: UnsafeMutablePointer<QueuedPacket>
    /// Packets from the last `receive()`.
    @exclusivity(unchecked) public internal(set) var packetCount = 0
    /// The SO_RCVTIMEO last set (milliseconds; 0 = none yet or forever), so it is set only when it changes.
    @exclusivity(unchecked) var receiveTimeout: Int32 = 0

    // Verdicts: appended to one buffer, sent with one sendto.
    let verdictBuffer: UnsafeMutableRawPointer
    let verdictCapacity: Int
    @exclusivity(unchecked) var verdictLength = 0
    @exclusivity(unchecked) var pendingVerdicts = 0
    @exclusivity(unchecked) var deferredSendError: NetfilterQueueError?

    // Refused verdicts (NLMSG_ERROR replies), a bounded ring.
    static let refusedCapacity = 256
    let refused: UnsafeMutablePointer<RefusedVerdict>
    @exclusivity(unchecked) var refusedStart = 0
    @exclusivity(unchecked) var refusedCount = 0

    /// Counters since the queue was opened.
    @exclusivity(unchecked) public internal(set) var statistics = NetfilterQueueStatistics()

    @exclusivity(unchecked) var configSequence: UInt32 = 0

    struct RefusedVerdict {
        var packetID: UInt32
        var errno: Int32
    }

    /// Opens NETLINK_NETFILTER, binds the queue (AF_INET) and configures copy mode, range,
    /// flags and queue length, each acknowledged by the kernel.
    /// Throws `.queueInUse(n)` when another socket owns the queue.
    public init(configuration: NetfilterQueueConfiguration) throws(NetfilterQueueError) {
        guard configuration.batchSize >= 1 else {
            throw .invalidConfiguration("batchSize must be at least 1")
        }
        self.configuration = configuration
        let queue = configuration.queueNumber

        var openError: Int32 = 0
        guard let socket = cnfq_socket_open(&openError) else {
            throw .system(operation: "open netfilter netlink socket", errno: openError)
        }
        let fd = cnfq_socket_fd(socket)

        // Socket options before the bind, so no packet can meet the small default buffers.
        var result = cnfq_socket_set_no_enobufs(fd)
        var failedOperation = "set NETLINK_NO_ENOBUFS"
        var actualReceive: Int32 = 0
        if result == 0 {
            result = cnfq_socket_set_buffer(fd, 1, configuration.receiveBufferBytes, &actualReceive)
            failedOperation = "set receive buffer to \(configuration.receiveBufferBytes) bytes"
        }
        let maxVerdict = cnfq_verdict_message_size(UInt32(CNFQ_MAX_COPY_RANGE), 1)
        let wantedVerdictBytes = configuration.batchSize * maxVerdict
        var actualSend: Int32 = 0
        if result == 0 {
            let request = Int32(clamping: wantedVerdictBytes + 65536)
            result = cnfq_socket_set_buffer(fd, 0, request, &actualSend)
            failedOperation = "set send buffer to \(request) bytes"
        }
        if result != 0 {
            cnfq_socket_close(socket)
            throw .system(operation: failedOperation, errno: -result)
        }

        self.socket = socket
        self.fileDescriptor = fd
        self.slotCount = configuration.batchSize
        self.receiveBase = .allocate(byteCount: Self.slotSize * slotCount, alignment: 16)
        // netlink refuses a sendto longer than the send buffer minus 32 bytes.
        self.verdictCapacity = max(maxVerdict, min(wantedVerdictBytes, Int(actualSend) - 64))
        self.verdictBuffer = .allocate(byteCount: verdictCapacity, alignment: 16)
        self.packets = .allocate(capacity: slotCount)
        self.packets.initialize(
            repeating: QueuedPacket(id: 0, payload: UnsafeMutableRawBufferPointer(start: nil, count: 0)),
            count: slotCount)
        self.refused = .allocate(capacity: Self.refusedCapacity)
        self.refused.initialize(repeating: RefusedVerdict(packetID: 0, errno: 0), count: Self.refusedCapacity)
        guard let vector = cnfq_receive_vector_create(receiveBase, Self.slotSize, UInt32(slotCount)) else {
            // Fully initialized from here on would need the vector; clean up by hand.
            receiveBase.deallocate()
            verdictBuffer.deallocate()
            packets.deallocate()
            refused.deallocate()
            cnfq_socket_close(socket)
            throw .system(operation: "allocate receive vector", errno: ENOMEM)
        }
        self.receiveVector = vector
        // Fully initialized: from here on a throw runs deinit, which frees everything.

        let bindError = try request(operation: "bind queue \(queue)") { buffer, sequence in
            cnfq_build_config_command(buffer, queue, UInt8(CNFQ_CFG_CMD_BIND), UInt16(AF_INET), sequence, 1)
        }
        if bindError == EPERM { throw .queueInUse(queue) }
        if bindError != 0 { throw .system(operation: "bind queue \(queue)", errno: bindError) }
        isBound = true

        var flags: UInt32 = 0
        if configuration.gso { flags |= UInt32(CNFQ_CFG_F_GSO) }
        if configuration.failOpen { flags |= UInt32(CNFQ_CFG_F_FAIL_OPEN) }
        let mask = UInt32(CNFQ_CFG_F_GSO) | UInt32(CNFQ_CFG_F_FAIL_OPEN)
        let configError = try request(operation: "configure queue \(queue)") { buffer, sequence in
            cnfq_build_config_parameters(
                buffer, queue, configuration.copyRange, flags, mask, configuration.maxQueueLength, sequence)
        }
        if configError != 0 { throw .system(operation: "configure queue \(queue)", errno: configError) }
    }

    deinit {
        if isBound {
            var message = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &message) { raw in
                let length = cnfq_build_config_command(
                    raw.baseAddress, configuration.queueNumber, UInt8(CNFQ_CFG_CMD_UNBIND), UInt16(AF_INET), 0, 0)
                _ = cnfq_send(fileDescriptor, raw.baseAddress, length)
            }
        }
        cnfq_socket_close(socket)
        cnfq_receive_vector_destroy(receiveVector)
        receiveBase.deallocate()
        verdictBuffer.deallocate()
        packets.deallocate()
        refused.deallocate()
    }

    /// Sends one configuration message built by `build` (with NLM_F_ACK) and waits for its
    /// acknowledgement. Returns the errno the kernel answered (0 = success). Packets that
    /// arrive meanwhile cannot be handed out yet: they are dropped and counted.
    func request(
        operation: String, _ build: (UnsafeMutableRawPointer, UInt32) -> Int
    ) throws(NetfilterQueueError) -> Int32 {
        configSequence &+= 1
        let sequence = configSequence
        // Build into the verdict buffer (empty during init; at least one verdict in size).
        let length = build(verdictBuffer, sequence)
        let sent = cnfq_send(fileDescriptor, verdictBuffer, length)
        if sent < 0 { throw .system(operation: operation, errno: Int32(-sent)) }

        var waited: Int32 = 0
        while waited < 5000 {
            var pfd = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .system(operation: operation, errno: errno)
            }
            if ready == 0 { waited += 100; continue }
            let received = cnfq_receive_batch(fileDescriptor, receiveVector, 1, 0)
            if received < 0 {
                if -received == EAGAIN || -received == EINTR { continue }
                if -received == ENOBUFS { statistics[.receiveOverruns] &+= 1; continue }
                throw .system(operation: operation, errno: -received)
            }
            let datagramLength = Int(cnfq_received_length(receiveVector, 0))
            var offset = 0
            var message: UnsafeMutableRawPointer?
            var answer: Int32?
            while true {
                let kind = cnfq_message_next(receiveBase, datagramLength, &offset, &message)
                if kind == Int32(CNFQ_MESSAGE_END) { break }
                if kind == Int32(CNFQ_MESSAGE_ERROR) {
                    var original: UInt32 = 0
                    let code = cnfq_parse_error(message, &original)
                    if original == sequence { answer = code }
                } else if kind == Int32(CNFQ_MESSAGE_PACKET) {
                    var parsed = cnfq_packet()
                    if cnfq_parse_packet(message, &parsed) == 0 {
                        dropDuringSetup(packetID: parsed.id)
                    }
                }
            }
            if let answer { return answer }
        }
        throw .noAcknowledgement(operation: operation)
    }

    private func dropDuringSetup(packetID: UInt32) {
        var message = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &message) { raw in
            let length = cnfq_put_verdict(
                raw.baseAddress, raw.count, configuration.queueNumber, packetID, Int32(CNFQ_NF_DROP), nil, 0)
            if length > 0, cnfq_send(fileDescriptor, raw.baseAddress, length) > 0 {
                statistics[.packetsDroppedByBinding] &+= 1
            }
        }
    }
}

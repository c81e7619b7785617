import Glibc
import NetfilterQueue
import Testing

/// Each test gets its own network namespace and a queue number in the 7xx range, so they can
/// run in parallel with each other and with anything else on the machine. Needs root.
@Suite struct NetfilterQueueTests {
    static let receiverPort: UInt16 = 9

    /// Namespace with loopback up, a mark on outgoing UDP to port 9 and those packets queued.
    static func queuedNamespace(tag: Int, queue: UInt16) throws -> TestNamespace {
        let namespace = try TestNamespace(tag: tag)
        do {
            try namespace.exec([
                "iptables", "-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9",
                "-j", "MARK", "--set-mark", "0x2a",
            ])
            try namespace.exec([
                "iptables", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9",
                "-j", "NFQUEUE", "--queue-num", "\(queue)",
            ])
        } catch {
            namespace.remove()
            throw error
        }
        return namespace
    }

    /// The UDP payload of an IPv4/UDP packet, after checking its headers.
    static func udpPayload(_ packet: QueuedPacket, sourcePort: UInt16) -> [UInt8]? {
        let bytes = UnsafeRawBufferPointer(packet.payload)
        guard bytes.count >= 28, bytes[0] == 0x45, bytes[9] == 17 else { return nil }
        let source = bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).bigEndian
        let destination = bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian
        let totalLength = Int(bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self).bigEndian)
        let udpSource = bytes.loadUnaligned(fromByteOffset: 20, as: UInt16.self).bigEndian
        let udpDestination = bytes.loadUnaligned(fromByteOffset: 22, as: UInt16.self).bigEndian
        guard source == 0x7f00_0001, destination == 0x7f00_0001, totalLength == bytes.count,
            udpSource == sourcePort, udpDestination == receiverPort
        else { return nil }
        return Array(bytes[28...])
    }

    static func port(of socket: UDPSocket) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket.fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test func acceptsWithModifiedPayloadAndDrops() throws {
        let namespace = try Self.queuedNamespace(tag: 1, queue: 701)
        defer { namespace.remove() }
        let (queue, receiver, sender) = try namespace.onThread {
            (try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 701)),
             try UDPSocket(port: Self.receiverPort), try UDPSocket())
        }
        let senderPort = Self.port(of: sender)
        for index in 0..<3 { try sender.send(Array("masqd-\(index)".utf8), toPort: Self.receiverPort) }

        var seen: [String] = []
        var attempts = 0
        while seen.count < 3 && attempts < 20 {
            attempts += 1
            let count = try queue.receive(timeoutMilliseconds: 200)
            #expect(count == queue.packetCount)
            for index in 0..<count {
                let packet = queue.packet(at: index)
                #expect(packet.hook == .localOut)
                #expect(packet.hook.rawValue == 3)  // NF_INET_LOCAL_OUT, as the kernel numbers it
                #expect(packet.hardwareProtocol == .ipv4)
                #expect(packet.outputInterfaceIndex == 1)  // lo
                #expect(packet.inputInterfaceIndex == 0)
                #expect(packet.mark == 0x2a)
                #expect(!packet.isTruncated && !packet.isGSO)
                #expect(packet.originalLength == packet.payload.count)
                let payload = try #require(Self.udpPayload(packet, sourcePort: senderPort))
                let text = String(decoding: payload, as: UTF8.self)
                seen.append(text)
                switch text {
                case "masqd-0":
                    packet.payload[28] = UInt8(ascii: "M")
                    completeUDPChecksum(packet.payload)
                    queue.setVerdict(packetID: packet.id, .accept, payload: UnsafeRawBufferPointer(packet.payload))
                case "masqd-1":
                    queue.setVerdict(packetID: packet.id, .drop, payload: nil)
                default:
                    queue.setVerdict(packetID: packet.id, .accept, payload: nil)
                }
            }
            try queue.flushVerdicts()
        }
        #expect(seen == ["masqd-0", "masqd-1", "masqd-2"])

        let arrived = receiver.receiveAll(timeoutMilliseconds: 300).map { String(decoding: $0, as: UTF8.self) }
        #expect(arrived == ["Masqd-0", "masqd-2"])

        let statistics = queue.statistics
        #expect(statistics[.packetsReceived] == 3)
        #expect(statistics[.verdictsSent] == 3)
        #expect(statistics[.verdictMessagesSent] >= 1 && statistics[.verdictMessagesSent] <= 3)
        #expect(statistics[.netlinkErrors] == 0)
        #expect(statistics[.truncatedPackets] == 0)
        #expect(statistics[.packetsDroppedByBinding] == 0)
    }

    @Test func secondBindOfAQueueIsQueueInUse() throws {
        let namespace = try TestNamespace(tag: 2)
        defer { namespace.remove() }
        try namespace.onThread {
            var first: NetfilterQueue? = try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 702))
            #expect(first != nil)
            #expect(throws: NetfilterQueueError.queueInUse(702)) {
                _ = try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 702))
            }
            do throws(NetfilterQueueError) {
                _ = try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 702))
                Issue.record("second bind succeeded")
            } catch {
                #expect(error.description == "queue 702 is already in use")
            }
            // Releasing the first (unbind + close) frees the number again.
            first = nil
            let again = try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 702))
            #expect(again.fileDescriptor >= 0)
        }
    }

    @Test func refusedVerdictIsReportedWithItsPacketID() throws {
        let namespace = try TestNamespace(tag: 3)
        defer { namespace.remove() }
        let queue = try namespace.onThread {
            try NetfilterQueue(configuration: NetfilterQueueConfiguration(queueNumber: 703))
        }
        queue.setVerdict(packetID: 0xdead, .accept, payload: nil)
        try queue.flushVerdicts()
        #expect(try queue.receive(timeoutMilliseconds: 1000) == 0)

        var refusals: [(UInt32, Int32)] = []
        queue.drainRefusedVerdicts { refusals.append(($0, $1)) }
        #expect(refusals.count == 1)
        #expect(refusals.first?.0 == 0xdead)
        #expect(refusals.first?.1 == ENOENT)
        queue.drainRefusedVerdicts { _, _ in Issue.record("drained twice") }

        let statistics = queue.statistics
        #expect(statistics[.netlinkErrors] == 1)
        #expect(statistics.lastNetlinkErrno == ENOENT)
        #expect(statistics.lastErrorPacketID == 0xdead)
        #expect(statistics[.verdictsSent] == 1)
        #expect(statistics[.verdictMessagesSent] == 1)
    }

    @Test func receivesInBatchesAndEchoesPayloads() throws {
        let namespace = try Self.queuedNamespace(tag: 4, queue: 704)
        defer { namespace.remove() }
        var configuration = NetfilterQueueConfiguration(queueNumber: 704)
        configuration.batchSize = 8
        let (queue, receiver, sender) = try namespace.onThread {
            (try NetfilterQueue(configuration: configuration),
             try UDPSocket(port: Self.receiverPort), try UDPSocket())
        }
        let senderPort = Self.port(of: sender)
        let total = 20
        for index in 0..<total { try sender.send(Array("batch-\(index)".utf8), toPort: Self.receiverPort) }
        usleep(100_000)  // let all of them queue up

        var seen: [String] = []
        var batches: [Int] = []
        var attempts = 0
        while seen.count < total && attempts < 50 {
            attempts += 1
            let count = try queue.receive(timeoutMilliseconds: 200)
            guard count > 0 else { continue }
            batches.append(count)
            for index in 0..<count {
                let packet = queue.packet(at: index)
                let payload = try #require(Self.udpPayload(packet, sourcePort: senderPort))
                seen.append(String(decoding: payload, as: UTF8.self))
                completeUDPChecksum(packet.payload)
                queue.setVerdict(packetID: packet.id, .accept, payload: UnsafeRawBufferPointer(packet.payload))
            }
            try queue.flushVerdicts()
        }
        #expect(seen == (0..<total).map { "batch-\($0)" })
        #expect(batches.first == 8)  // one recvmmsg took a full batch
        #expect(batches.allSatisfy { $0 <= 8 })

        let arrived = receiver.receiveAll(timeoutMilliseconds: 300).map { String(decoding: $0, as: UTF8.self) }
        #expect(arrived == seen)
        #expect(queue.statistics[.packetsReceived] == UInt64(total))
        #expect(queue.statistics[.verdictsSent] == UInt64(total))
        #expect(queue.statistics[.verdictMessagesSent] == UInt64(batches.count))
        #expect(queue.statistics[.netlinkErrors] == 0)
    }

    @Test func rejectsAnEmptyBatch() {
        var configuration = NetfilterQueueConfiguration(queueNumber: 705)
        configuration.batchSize = 0
        #expect(throws: NetfilterQueueError.invalidConfiguration("batchSize must be at least 1")) {
            _ = try NetfilterQueue(configuration: configuration)
        }
    }

    @Test func errorDescriptions() {
        #expect(NetfilterQueueError.queueInUse(7).description == "queue 7 is already in use")
        #expect(
            NetfilterQueueError.system(operation: "bind queue 3", errno: EACCES).description
                == "bind queue 3: Permission denied")
    }
}

import Glibc

/// A minimal UDP socket on 127.0.0.1 for the tests.
final class UDPSocket {
    let fd: Int32

    init(port: UInt16 = 0) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = Self.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestFailure("bind port \(port): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], toPort port: UInt16) throws {
        var address = Self.loopback(port: port)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == bytes.count else { throw TestFailure("sendto: errno \(errno)") }
    }

    /// Datagrams that arrive until `timeoutMilliseconds` pass without one.
    func receiveAll(timeoutMilliseconds: Int32) -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, timeoutMilliseconds) > 0 else { return datagrams }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { return datagrams }
            datagrams.append(Array(buffer[0..<count]))
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}

/// Writes the full UDP checksum of an IPv4/UDP packet.
func completeUDPChecksum(_ packet: UnsafeMutableRawBufferPointer) {
    let headerLength = Int(packet[0] & 0x0f) * 4
    let udpLength = packet.count - headerLength
    packet[headerLength + 6] = 0
    packet[headerLength + 7] = 0
    var sum: UInt32 = 0
    func add(_ offset: Int, _ count: Int) {
        var index = offset
        while index + 1 < offset + count {
            sum += UInt32(packet[index]) << 8 | UInt32(packet[index + 1])
            index += 2
        }
        if index < offset + count { sum += UInt32(packet[index]) << 8 }
    }
    add(12, 8)  // source and destination address
    sum += 17 + UInt32(udpLength)
    add(headerLength, udpLength)
    while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
    var checksum = ~UInt16(sum)
    if checksum == 0 { checksum = 0xffff }
    packet[headerLength + 6] = UInt8(checksum >> 8)
    packet[headerLength + 7] = UInt8(checksum & 0xff)
}

import Glibc
import NATCore

// The sync channel's UDP socket: bound to --sync-listen, sending to --sync-peer, nonblocking,
// polled by the engine's main loop. Only datagrams whose source address is the peer's are
// handed on as the peer's (the MAC is what proves it; the address check drops strays early).

final class SyncSocket {
    let fileDescriptor: Int32
    let peer: IPv4Endpoint
    private var buffer = [UInt8](repeating: 0, count: 2048)

    init(listen: IPv4Endpoint, peer: IPv4Endpoint) throws(MasqdError) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .option("--sync-listen", listen.description, String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var size: Int32 = 4 << 20 // a resync arrives in bursts
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.socketAddress(listen)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw .option("--sync-listen", listen.description, "cannot bind: \(message)")
        }
        fileDescriptor = fd
        self.peer = peer
    }

    deinit { close(fileDescriptor) }

    static func socketAddress(_ endpoint: IPv4Endpoint) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.value.bigEndian
        return address
    }

    /// The next datagram and whether it came from the peer's address; nil when none is waiting.
    func receive() -> (bytes: [UInt8], fromPeer: Bool)? {
        var from = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fileDescriptor, raw.baseAddress, raw.count, 0, $0, &length) }
                }
            }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { return nil }
            // A datagram longer than the buffer is cut; its length then fails the decoder's check.
            return (Array(buffer[0..<n]), UInt32(bigEndian: from.sin_addr.s_addr) == peer.address.value)
        }
    }

    /// Sends one datagram to the peer; false when the socket's buffer is full (try later).
    /// Other errors (no route yet, the peer unreachable) count as sent: the protocol resends.
    func send(_ bytes: [UInt8]) -> Bool {
        var address = Self.socketAddress(peer)
        while true {
            let n = bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fileDescriptor, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if n >= 0 { return true }
            if errno == EINTR { continue }
            return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
        }
    }
}

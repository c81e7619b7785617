import CLinux
import Glibc
import NATCore

// Reads which ports the router's own sockets hold on the WAN side (/proc/net/{tcp,udp,tcp6,
// udp6} of masqd's network namespace) and its ephemeral range (ip_local_port_range); the
// parsing is NATCore's LocalSocketTable. The main loop reads them at start, on reload, when
// the WAN address changes and every `refreshInterval`, outside the translator lock; the
// packet threads never do. Bounded: at most `maximumBytes` of each file (the router's own
// sockets; forwarded connections are not in these files), the rest counted as cut.
//
// /proc/net/tcp and tcp6 cost: the kernel walks every bucket of its established hash for
// each (262144 here: ~9 ms each, in one stretch without a reschedule point on this
// non-preemptible kernel, which holds one of two CPUs — every 2 s, that was the packet
// path's worst stall). So between full reads, every `connectionsRefreshInterval`, the TCP
// listeners come from sock_diag (their own small hash), the router's TCP connections from the
// last full read; UDP files are read every time (a small hash: tens of µs).

struct LocalPortsReader {
    static let socketFiles: [(path: String, family: LocalSocketTable.Family, protocolNumber: UInt8)] = [
        ("/proc/net/tcp", .ipv4, IPProtocolNumber.tcp), ("/proc/net/tcp6", .ipv6, IPProtocolNumber.tcp),
        ("/proc/net/udp", .ipv4, IPProtocolNumber.udp), ("/proc/net/udp6", .ipv6, IPProtocolNumber.udp),
    ]
    static let portRangePath = "/proc/sys/net/ipv4/ip_local_port_range"
    /// 16 MiB: some 100 000 sockets of the router's own.
    static let maximumBytes = 16 << 20
    static let refreshInterval = NATDuration.seconds(2)
    static let connectionsRefreshInterval = NATDuration.seconds(60)

    struct Reading {
        var held = LocalPortSet()
        var outcome = LocalSocketTable.Outcome()
        /// Files that could not be read (no IPv6: tcp6 and udp6 are absent), or were cut at the bound.
        var unreadable: [String] = []
        var cut: [String] = []
    }

    /// The ports held on `address` or the wildcard, from every socket file there is; or, with
    /// `tcpConnections` (the TCP ports of an earlier full read), TCP from the listeners now
    /// plus those (a full read when the listeners cannot be read).
    static func readHeld(address: IPv4Address?, tcpConnections: LocalPortSet? = nil) -> Reading {
        var reading = Reading()
        var skipTCPFiles = false
        if let tcpConnections, let listeners = readTCPListeners(address: address) {
            skipTCPFiles = true
            reading.outcome.sockets += listeners.sockets
            for port in listeners.held {
                reading.outcome.held += 1
                reading.held.insert(protocolNumber: IPProtocolNumber.tcp, port: port)
            }
            for port in 0...UInt16.max where tcpConnections.contains(protocolNumber: IPProtocolNumber.tcp, port: port) {
                reading.held.insert(protocolNumber: IPProtocolNumber.tcp, port: port)
            }
        }
        for file in socketFiles where !(skipTCPFiles && file.protocolNumber == IPProtocolNumber.tcp) {
            guard let (bytes, complete) = readFile(file.path, limit: maximumBytes) else {
                reading.unreadable.append(file.path)
                continue
            }
            if !complete { reading.cut.append(file.path) }
            let outcome = bytes.withUnsafeBytes {
                LocalSocketTable.addHeldPorts($0, family: file.family, protocolNumber: file.protocolNumber, address: address, into: &reading.held)
            }
            reading.outcome.sockets += outcome.sockets
            reading.outcome.held += outcome.held
            reading.outcome.malformed += outcome.malformed
        }
        return reading
    }

    /// The ports of TCP listeners bound to `address` or the wildcard (`::` and `::ffff:address`
    /// too, as in LocalSocketTable), by sock_diag; nil when it cannot be read.
    static func readTCPListeners(address: IPv4Address?) -> (held: [UInt16], sockets: Int)? {
        var held: [UInt16] = []
        var sockets = 0
        for family in [AF_INET, AF_INET6] {
            var capacity = 1024
            var listeners: [clinux_listener] = []
            while true {
                listeners = [clinux_listener](repeating: clinux_listener(), count: capacity)
                let count = Int(clinux_tcp_listeners(family, &listeners, Int32(capacity)))
                guard count >= 0 else { return nil }
                if count <= capacity { listeners.removeSubrange(count...); break }
                guard capacity < 1 << 20 else { return nil } // beyond any router: read the files
                capacity = count + 1024
            }
            sockets += listeners.count
            for listener in listeners {
                let bytes = listener.address
                let word = { (at: Int) -> UInt32 in
                    withUnsafeBytes(of: bytes) { UInt32($0[at]) << 24 | UInt32($0[at + 1]) << 16 | UInt32($0[at + 2]) << 8 | UInt32($0[at + 3]) }
                }
                let local: UInt32?
                if listener.is_ipv6 == 0 { local = word(0) }
                else if word(0) == 0, word(4) == 0, word(8) == 0, word(12) == 0 { local = 0 } // ::
                else if word(0) == 0, word(4) == 0, word(8) == 0x0000_ffff { local = word(12) } // ::ffff:a.b.c.d
                else { local = nil }
                if let local, local == 0 || local == address?.value { held.append(listener.port) }
            }
        }
        return (held, sockets)
    }

    /// The router's ephemeral port range, or nil when it cannot be read.
    static func readPortRange() -> ClosedRange<UInt16>? {
        guard let (bytes, _) = readFile(portRangePath, limit: 64) else { return nil }
        return bytes.withUnsafeBytes { LocalSocketTable.parsePortRange($0) }
    }

    /// Up to `limit` bytes of a file (proc files have no size: read to the end), and whether
    /// that was all of it.
    static func readFile(_ path: String, limit: Int) -> (bytes: [UInt8], complete: Bool)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: min(limit, 65536))
        var done = 0
        while true {
            if done == bytes.count {
                guard bytes.count < limit else {
                    var probe: UInt8 = 0
                    return (bytes, Glibc.read(fd, &probe, 1) == 0)
                }
                bytes += [UInt8](repeating: 0, count: min(bytes.count, limit - bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            done += n
        }
        return (Array(bytes[0..<done]), true)
    }
}

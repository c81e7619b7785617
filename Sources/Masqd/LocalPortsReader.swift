import Glibc
import NATCore

// Reads which ports the router's own sockets hold on the WAN side (/proc/net/{tcp,udp,tcp6,
// udp6} of masqd's network namespace) and its ephemeral range (ip_local_port_range); the
// parsing is NATCore's LocalSocketTable. The main loop reads them at start, on reload, when
// the WAN address changes and every `refreshInterval`, outside the translator lock; the
// packet threads never do. Bounded: at most `maximumBytes` of each file (the router's own
// sockets; forwarded connections are not in these files), the rest counted as cut.

struct LocalPortsReader {
    static let socketFiles: [(path: String, family: LocalSocketTable.Family, protocolNumber: UInt8)] = [
        ("/proc/net/tcp", .ipv4, IPProtocolNumber.tcp), ("/proc/net/tcp6", .ipv6, IPProtocolNumber.tcp),
        ("/proc/net/udp", .ipv4, IPProtocolNumber.udp), ("/proc/net/udp6", .ipv6, IPProtocolNumber.udp),
    ]
    static let portRangePath = "/proc/sys/net/ipv4/ip_local_port_range"
    /// 16 MiB: some 100 000 sockets of the router's own.
    static let maximumBytes = 16 << 20
    static let refreshInterval = NATDuration.seconds(2)

    struct Reading {
        var held = LocalPortSet()
        var outcome = LocalSocketTable.Outcome()
        /// Files that could not be read (no IPv6: tcp6 and udp6 are absent), or were cut at the bound.
        var unreadable: [String] = []
        var cut: [String] = []
    }

    /// The ports held on `address` or the wildcard, from every socket file there is.
    static func readHeld(address: IPv4Address?) -> Reading {
        var reading = Reading()
        for file in socketFiles {
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

import Glibc
import NATCore

// The control socket: `masqd flows` and `masqd stats` connect, send one request line and
// read the answer until the engine closes. Served by the engine's main loop (which also runs
// the sweep, address changes and reloads) the way the metrics server is: the listener and
// every client are non-blocking and polled with the loop's own descriptors, and each wake-up
// does what is ready and returns, so a client that sends nothing, dribbles its line or does
// not read its answer holds nothing but its own buffers (PolledConnections.swift). A client
// has `requestTimeout` from its connection to send its line and then `answerTimeout` to take
// the answer; at most `maxClients` are open (a new one closes the oldest). The answer takes
// the engine lock only to copy what it needs (Engine-Reports.swift).

final class ControlServer {
    typealias Counters = PolledConnections.Counters

    let path: String
    private let connections: PolledConnections
    var counters: Counters { connections.counters }

    static let requestTimeout = NATDuration(nanoseconds: 1_000_000_000)
    static let answerTimeout = NATDuration.seconds(2)
    static let maxRequestBytes = 1024
    static let maxClients = 16

    init(path: String) throws(MasqdError) {
        self.path = path
        guard let lastSlash = path.lastIndex(of: "/") else {
            throw .option("--control", path, "must be an absolute path")
        }
        let directory = String(path[..<lastSlash])
        if !directory.isEmpty { try ControlServer.makeDirectory(directory, for: path) }
        guard var address = UnixSocket.address(path) else {
            throw .option("--control", path, "path too long for a unix socket")
        }
        // A socket file that answers belongs to a running engine; one that does not is stale.
        let probe = UnixSocket.connect(path)
        if probe.fd >= 0 {
            close(probe.fd)
            throw .option("--control", path, "already in use by a running engine")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .option("--control", path, String(cString: strerror(errno))) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, chmod(path, 0o660) == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw .option("--control", path, message)
        }
        connections = PolledConnections(
            listener: fd, maxClients: Self.maxClients, maxRequestBytes: Self.maxRequestBytes,
            requestTimeout: Self.requestTimeout, answerTimeout: Self.answerTimeout)
    }

    deinit {
        unlink(path)
    }

    static func makeDirectory(_ directory: String, for path: String) throws(MasqdError) {
        var partial = ""
        for component in directory.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0, errno != EEXIST {
                throw .option("--control", path, "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Appends what the main loop's poll() must watch: the listener and each client, for
    /// reading its request or writing its answer.
    func addPollEntries(to fds: inout [pollfd]) {
        connections.addPollEntries(to: &fds)
    }

    /// Does what `polled` (this server's entries after poll()) says is ready, without waiting,
    /// and closes the clients whose time is up. `respond` makes the answer to a request line.
    func serve(_ polled: ArraySlice<pollfd>, now: NATTime, respond: (String) -> String) {
        connections.serve(polled, now: now) { request, ended in
            // The line ends at its newline, at the size cap, or where the client closed its side.
            let line: ArraySlice<UInt8>
            if let newline = request.firstIndex(of: UInt8(ascii: "\n")) {
                line = request[..<newline]
            } else if ended || request.count >= Self.maxRequestBytes {
                line = request.prefix(Self.maxRequestBytes)
            } else {
                return nil
            }
            return Array(respond(String(decoding: line, as: UTF8.self)).utf8)
        }
    }
}

/// The client side, for `masqd flows` and `masqd stats`.
public enum ControlClient {
    public static func request(_ line: String, path: String) throws(MasqdError) -> String {
        let connection = UnixSocket.connect(path)
        guard connection.fd >= 0 else {
            throw .option("--control", path, "no engine answers there (\(String(cString: strerror(connection.errno))))")
        }
        defer { close(connection.fd) }
        UnixSocket.setTimeouts(connection.fd, milliseconds: 10_000)
        guard UnixSocket.writeAll(connection.fd, line + "\n") else {
            throw .option("--control", path, "the engine closed the connection")
        }
        return UnixSocket.readAll(connection.fd)
    }
}

import Glibc
import NATCore

// The control socket: `masqd flows` and `masqd stats` connect, send one request line and
// read the answer until the engine closes. Served by the engine's main loop (which also runs
// the sweep, address changes and reloads) the way the metrics server is: the listener and
// every client are non-blocking and polled with the loop's own descriptors, and each wake-up
// does what is ready and returns, so a client that sends nothing, dribbles its line or does
// not read its answer holds nothing but its own buffers. A client has `requestTimeout` from
// its connection to send its line and then `answerTimeout` to take the answer; at most
// `maxClients` are open (a new one closes the oldest). The answer takes the engine lock only
// to copy what it needs (Engine-Reports.swift).

final class ControlServer {
    struct Counters {
        /// Clients closed because their request line or their taking of the answer ran out of time.
        var clientsTimedOut: UInt64 = 0
        /// Clients closed to make room for a new one (`maxClients` were open).
        var clientsEvicted: UInt64 = 0
    }

    struct Client {
        var request: [UInt8] = []
        /// Empty until the request line is complete; then the whole answer, sent from `sent` on.
        var response: [UInt8] = []
        var answered = false
        var sent = 0
        var deadline: NATTime
    }

    let path: String
    let fileDescriptor: Int32
    private(set) var counters = Counters()
    private var clients: [Int32: Client] = [:]

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
        fileDescriptor = fd
    }

    deinit {
        for fd in clients.keys { close(fd) }
        close(fileDescriptor)
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
        fds.append(pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0))
        for (fd, client) in clients {
            fds.append(pollfd(fd: fd, events: Int16(client.answered ? POLLOUT : POLLIN), revents: 0))
        }
    }

    /// Does what `polled` (this server's entries after poll()) says is ready, without waiting,
    /// and closes the clients whose time is up. `respond` makes the answer to a request line.
    func serve(_ polled: ArraySlice<pollfd>, now: NATTime, respond: (String) -> String) {
        for entry in polled where entry.revents != 0 {
            if entry.fd == fileDescriptor {
                acceptClients(now: now)
            } else {
                serveClient(entry.fd, now: now, respond: respond)
            }
        }
        if !clients.isEmpty {
            for (fd, client) in clients where client.deadline <= now {
                counters.clientsTimedOut &+= 1
                closeClient(fd)
            }
        }
    }

    private func acceptClients(now: NATTime) {
        while true {
            let fd = accept(fileDescriptor, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return // EAGAIN: nobody else is waiting (or out of descriptors: try on the next wake-up)
            }
            if clients.count >= Self.maxClients, let oldest = clients.min(by: { $0.value.deadline < $1.value.deadline })?.key {
                counters.clientsEvicted &+= 1
                closeClient(oldest)
            }
            guard fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
                close(fd)
                continue
            }
            clients[fd] = Client(deadline: now + Self.requestTimeout)
        }
    }

    private func closeClient(_ fd: Int32) {
        clients[fd] = nil
        close(fd)
    }

    private func serveClient(_ fd: Int32, now: NATTime, respond: (String) -> String) {
        guard var client = clients[fd] else { return }
        if !client.answered {
            var chunk = [UInt8](repeating: 0, count: Self.maxRequestBytes)
            var complete = false
            reading: while !complete {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, Self.maxRequestBytes - client.request.count, 0) }
                if n > 0 {
                    if let newline = chunk[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
                        client.request += chunk[0..<newline]
                        complete = true
                    } else {
                        client.request += chunk[0..<n]
                        complete = client.request.count >= Self.maxRequestBytes
                    }
                } else if n == 0 {
                    complete = true // the client ended its request by closing its side
                } else if errno == EINTR {
                    continue
                } else if errno == EAGAIN || errno == EWOULDBLOCK {
                    break reading
                } else {
                    closeClient(fd)
                    return
                }
            }
            guard complete else {
                clients[fd] = client // the rest of the line is still to come
                return
            }
            client.response = Array(respond(String(decoding: client.request, as: UTF8.self)).utf8)
            client.answered = true
            client.deadline = now + Self.answerTimeout
        }
        while client.sent < client.response.count {
            let n = client.response.withUnsafeBytes {
                send(fd, $0.baseAddress! + client.sent, $0.count - client.sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                client.sent += n
            } else if n < 0, errno == EINTR {
                continue
            } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                clients[fd] = client // the rest when the client has read some
                return
            } else {
                break // gone: nothing more to do for it
            }
        }
        closeClient(fd)
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

import Glibc
import NATCore

// The control socket: `masqd flows` and `masqd stats` connect, send one request line and
// read the answer until the engine closes. Served by the engine's main loop (which also runs
// the sweep, address changes and reloads), one client per turn of the loop: a client has
// `requestTimeout` from its connection to send its line, however it sends it (nothing, a
// byte at a time), and `answerTimeout` to take the answer, so a stuck or slow one costs the
// loop at most those, and a second waiting client is served on the loop's next turn, after
// its other work. The workers are never held up: the answer takes the lock only to copy.

final class ControlServer {
    let path: String
    let fileDescriptor: Int32
    /// Clients closed because their request line or their taking of the answer ran out of time.
    private(set) var clientsTimedOut: UInt64 = 0

    static let requestTimeout = NATDuration(nanoseconds: 1_000_000_000)
    static let answerTimeout = NATDuration.seconds(2)
    static let maxRequestBytes = 1024

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

    /// Accepts one waiting client, if any, and answers it with `respond(request)`.
    func serve(_ respond: (String) -> String) {
        let client = accept(fileDescriptor, nil, nil)
        guard client >= 0 else { return }
        defer { close(client) }
        guard fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK) == 0, fcntl(client, F_SETFD, FD_CLOEXEC) == 0 else { return }
        guard let request = Self.readRequest(client, deadline: MonotonicClock.now() + Self.requestTimeout) else {
            clientsTimedOut &+= 1
            return
        }
        let answer = respond(request)
        if !Self.send(answer, to: client, deadline: MonotonicClock.now() + Self.answerTimeout) { clientsTimedOut &+= 1 }
    }

    /// The request line (up to a newline, the end of the stream or `maxRequestBytes`), read
    /// in as few calls as the client allows; nil when `deadline` passes first.
    static func readRequest(_ fd: Int32, deadline: NATTime) -> String? {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: maxRequestBytes)
        while line.count < maxRequestBytes {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, maxRequestBytes - line.count, 0) }
            if n > 0 {
                if let newline = chunk[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
                    line += chunk[0..<newline]
                    break
                }
                line += chunk[0..<n]
            } else if n == 0 {
                break // the client finished its request by closing its side
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                guard wait(fd, for: Int16(POLLIN), until: deadline) else { return nil }
            } else {
                return nil
            }
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Sends all of `text`; false when `deadline` passes first or the client is gone.
    static func send(_ text: String, to fd: Int32, deadline: NATTime) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
            } else if n < 0, errno == EINTR {
                continue
            } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return false }
            } else {
                return true // the client went away: nothing more to do for it
            }
        }
        return true
    }

    /// Waits until `fd` is ready for `events` or `deadline` passes (false then).
    private static func wait(_ fd: Int32, for events: Int16, until deadline: NATTime) -> Bool {
        while true {
            let now = MonotonicClock.now()
            guard now < deadline else { return false }
            let milliseconds = Int32(clamping: (deadline.duration(since: now).nanoseconds + 999_999) / 1_000_000)
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return false }
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

import Glibc

// The control socket: `masqd flows` and `masqd stats` connect, send one request line and
// read the answer until the engine closes. Served from the packet loop between batches (the
// loop owns all state, so no locks); each client gets a short timeout so a stuck one cannot
// stall packets for long.

final class ControlServer {
    let path: String
    let fileDescriptor: Int32

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

    /// Accepts every waiting client and answers each with `respond(request)`.
    func serve(_ respond: (String) -> String) {
        while true {
            let client = accept(fileDescriptor, nil, nil)
            guard client >= 0 else { return }
            UnixSocket.setTimeouts(client, milliseconds: 1000)
            let request = UnixSocket.readLine(client)
            _ = UnixSocket.writeAll(client, respond(request))
            close(client)
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

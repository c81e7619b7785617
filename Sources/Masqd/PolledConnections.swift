import Glibc
import NATCore
import CounterSet

// The part the control socket and the metrics endpoint share: a non-blocking listener and its
// clients, polled by the engine's main loop with its own descriptors. Each wake-up does what
// is ready (accept, read, answer, write) and returns, so a client that sends nothing,
// dribbles its request or does not read its answer holds nothing but its own buffers. A
// client has `requestTimeout` from its connection to complete its request and then
// `answerTimeout` to take the answer (nil: the first deadline covers both); at most
// `maxClients` are open (a new one closes the one whose time runs out first, so idle connections cannot keep a request out). When
// accept fails for lack of descriptors the listener rests `acceptPause`, else its readiness
// would wake the loop over and over. A class, not a struct: an answer may read these very
// counters (`masqd stats` reports the control socket's), which a mutating serve() would be
// holding exclusively.

final class PolledConnections {
    typealias Counters = CounterSet<Counter>

    enum Counter: Int, CounterName {
        /// Clients closed because their request or their taking of the answer ran out of time.
        case clientsTimedOut
        /// Clients closed to make room for a new one (`maxClients` were open).
        case clientsEvicted
    }

    private struct Client {
        var request: [UInt8] = []
        /// nil until the request is complete; then the whole answer, sent from `sent` on.
        var response: [UInt8]? = nil
        var sent = 0
        var deadline: NATTime
    }

    let listener: Int32
    let maxClients: Int
    let maxRequestBytes: Int
    let requestTimeout: NATDuration
    let answerTimeout: NATDuration?
    static let acceptPause = NATDuration.seconds(1)

    private(set) var counters = Counters()
    private var clients: [Int32: Client] = [:]
    private var acceptPausedUntil: NATTime?

    /// Takes ownership of `listener` (non-blocking, listening); closes it and every client at the end.
    init(listener: Int32, maxClients: Int, maxRequestBytes: Int, requestTimeout: NATDuration, answerTimeout: NATDuration?) {
        self.listener = listener
        self.maxClients = maxClients
        self.maxRequestBytes = maxRequestBytes
        self.requestTimeout = requestTimeout
        self.answerTimeout = answerTimeout
    }

    deinit {
        for fd in clients.keys { close(fd) }
        close(listener)
    }

    var clientCount: Int { clients.count }

    /// Appends what poll() must watch: the listener (unless accepting rests) and each client,
    /// for reading its request or writing its answer.
    func addPollEntries(to fds: inout [pollfd]) {
        if acceptPausedUntil == nil { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
        for (fd, client) in clients {
            fds.append(pollfd(fd: fd, events: Int16(client.response == nil ? POLLIN : POLLOUT), revents: 0))
        }
    }

    /// Does what `polled` (these connections' entries after poll()) says is ready, without
    /// waiting, and closes the clients whose time is up. `answer` gets the request bytes so far
    /// (never more than `maxRequestBytes` + 1) and whether the client has closed its side; it
    /// returns the whole answer once the request is complete, nil while more is to come (a
    /// client that ends its side before that is closed unanswered).
    func serve(_ polled: ArraySlice<pollfd>, now: NATTime, answer: (_ request: [UInt8], _ ended: Bool) -> [UInt8]?) {
        for entry in polled where entry.revents != 0 {
            if entry.fd == listener {
                acceptClients(now: now)
            } else {
                serveClient(entry.fd, now: now, answer: answer)
            }
        }
        if let paused = acceptPausedUntil, now >= paused { acceptPausedUntil = nil }
        if !clients.isEmpty {
            for (fd, client) in clients where client.deadline <= now {
                counters[.clientsTimedOut] &+= 1
                closeClient(fd)
            }
        }
    }

    private func acceptClients(now: NATTime) {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    acceptPausedUntil = now + Self.acceptPause
                }
                return // EAGAIN: nobody else is waiting
            }
            if clients.count >= maxClients, let oldest = clients.min(by: { $0.value.deadline < $1.value.deadline })?.key {
                counters[.clientsEvicted] &+= 1
                closeClient(oldest)
            }
            guard fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
                close(fd)
                continue
            }
            clients[fd] = Client(deadline: now + requestTimeout)
        }
    }

    private func closeClient(_ fd: Int32) {
        clients[fd] = nil
        close(fd)
    }

    private func serveClient(_ fd: Int32, now: NATTime, answer: (_ request: [UInt8], _ ended: Bool) -> [UInt8]?) {
        guard var client = clients[fd] else { return }
        if client.response == nil {
            var chunk = [UInt8](repeating: 0, count: 2048)
            var ended = false
            reading: while client.request.count <= maxRequestBytes {
                let room = min(chunk.count, maxRequestBytes + 1 - client.request.count)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, room, 0) }
                if n > 0 {
                    client.request += chunk[0..<n]
                } else if n == 0 {
                    ended = true
                    break reading
                } else if errno == EINTR {
                    continue
                } else if errno == EAGAIN || errno == EWOULDBLOCK {
                    break reading
                } else {
                    closeClient(fd)
                    return
                }
            }
            guard let response = answer(client.request, ended) else {
                if ended { closeClient(fd) } else { clients[fd] = client } // else the rest is still to come
                return
            }
            client.response = response
            if let answerTimeout { client.deadline = now + answerTimeout }
        }
        let response = client.response ?? []
        while client.sent < response.count {
            let n = response.withUnsafeBytes {
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
        shutdown(fd, Int32(SHUT_WR))
        closeClient(fd)
    }
}

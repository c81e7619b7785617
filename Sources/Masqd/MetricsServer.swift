import Glibc
import NATCore
import CounterSet

// `--metrics ADDR:PORT`: a tiny HTTP/1.x server for Prometheus, run by the engine's main loop.
// It never blocks that loop: the listening socket and every client are non-blocking, and the
// main loop polls them with its own descriptors (`addPollEntries`); each wake-up does what is
// ready (accept, read, answer, write) and returns (PolledConnections.swift). A request is one
// GET of /metrics (HEAD too); its headers must fit in `maxRequestBytes`; a client gets
// `clientTimeout` from its connection to the end of the answer, then is closed — one that
// sends slowly, or does not read its answer, holds nothing but its own buffer. At most
// `maxClients` are open: a new one beyond that closes the oldest (a scrape takes
// milliseconds; idle connections must not be able to keep it out).

final class MetricsServer {
    typealias Counters = CounterSet<Counter>

    enum Counter: Int, CounterName {
        /// Answers with the metrics page.
        case scrapes
        /// Requests answered with an error: not /metrics (404), not GET or HEAD (405), not
        /// HTTP/1.x (400), headers too long (431).
        case badRequests
        /// Connections closed to make room for a new one (`maxClients` were open): the oldest
        /// goes, so idle connections cannot keep a scrape out.
        case clientsEvicted
        /// Connections closed when `clientTimeout` ran out before the answer was sent.
        case clientsTimedOut
    }

    static let maxClients = 16
    static let maxRequestBytes = 8192
    static let clientTimeout = NATDuration.seconds(5)

    let endpoint: MetricsEndpoint
    private let connections: PolledConnections
    private var requestCounters = Counters()
    var counters: Counters {
        var all = requestCounters
        all[.clientsEvicted] = connections.counters[.clientsEvicted]
        all[.clientsTimedOut] = connections.counters[.clientsTimedOut]
        return all
    }

    init(endpoint: MetricsEndpoint) throws(MasqdError) {
        self.endpoint = endpoint
        func failure(_ what: String) -> MasqdError {
            .option("--metrics", endpoint.description, "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("cannot make a socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.value.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = failure("cannot listen there")
            close(fd)
            throw error
        }
        // One deadline from connection to the end of the answer (nil answer timeout).
        connections = PolledConnections(
            listener: fd, maxClients: Self.maxClients, maxRequestBytes: Self.maxRequestBytes,
            requestTimeout: Self.clientTimeout, answerTimeout: nil)
    }

    var clientCount: Int { connections.clientCount }

    /// Appends what the main loop's poll() must watch for this server: the listener (unless
    /// accepting rests) and each client, for reading its request or writing its answer.
    func addPollEntries(to fds: inout [pollfd]) {
        connections.addPollEntries(to: &fds)
    }

    /// Does what `polled` (this server's entries after poll()) says is ready, without waiting,
    /// and closes the clients whose time is up. `page` makes the metrics page; it is called
    /// only for a good request.
    func serve(_ polled: ArraySlice<pollfd>, now: NATTime, page: () -> String) {
        connections.serve(polled, now: now) { request, _ in answer(request, page: page) }
    }

    /// Offset just past the blank line that ends the headers, if it has arrived.
    static func headersEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count, bytes[i + 1] == 0x0A { return i + 2 }
                if i + 2 < bytes.count, bytes[i + 1] == 0x0D, bytes[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// The whole answer to `request`, or nil while its headers are incomplete.
    func answer(_ request: [UInt8], page: () -> String) -> [UInt8]? {
        guard let end = Self.headersEnd(request) else {
            guard request.count > Self.maxRequestBytes else { return nil }
            requestCounters[.badRequests] &+= 1
            return Self.response(431, "Request Header Fields Too Large", "request headers longer than \(Self.maxRequestBytes) bytes\n")
        }
        let line = request[..<end].split(separator: 0x0A, maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map { $0.trimmingSuffix("\r") }
        guard words.count == 3, words[2].hasPrefix("HTTP/1.") else {
            requestCounters[.badRequests] &+= 1
            return Self.response(400, "Bad Request", "expected an HTTP/1.x request line\n")
        }
        let path = words[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            requestCounters[.badRequests] &+= 1
            return Self.response(404, "Not Found", "not found: only /metrics is served here\n")
        }
        guard words[0] == "GET" || words[0] == "HEAD" else {
            requestCounters[.badRequests] &+= 1
            return Self.response(405, "Method Not Allowed", "only GET and HEAD\n", extraHeaders: "Allow: GET, HEAD\r\n")
        }
        requestCounters[.scrapes] &+= 1
        return Self.response(200, "OK", page(), contentType: "text/plain; version=0.0.4; charset=utf-8", bodyIncluded: words[0] == "GET")
    }

    static func response(_ status: Int, _ reason: String, _ body: String, contentType: String = "text/plain; charset=utf-8",
                         extraHeaders: String = "", bodyIncluded: Bool = true) -> [UInt8] {
        let body = Array(body.utf8)
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        return Array(head.utf8) + (bodyIncluded ? body : [])
    }
}

extension Substring {
    fileprivate func trimmingSuffix(_ suffix: String) -> Substring {
        hasSuffix(suffix) ? dropLast(suffix.count) : self
    }
}

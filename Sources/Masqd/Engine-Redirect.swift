import Glibc
import NATCore

// Transparent redirect in the daemon: the router's interface addresses for the translator
// (a redirected connection goes to the address of the interface it came in on, as the
// kernel's REDIRECT does), the proxy's lookup of a client's original destination on the
// control socket, and the redirect's lines in `masqd flows` and `masqd stats`.

extension Engine {
    /// Main loop: at start and every 2 s (with the router's ports), reads every interface's
    /// first IPv4 address (getifaddrs) and hands them to the translator when they changed.
    /// A client on an interface that got its address since is refused until then
    /// (`drop_redirect_no_local_address`); its SYN retransmission gets through.
    func refreshInterfaceAddresses(now: NATTime, force: Bool = false) {
        guard !settings.nat.redirects.isEmpty,
              force || now.duration(since: redirectState.lastRefresh) >= LocalPortsReader.refreshInterval else { return }
        redirectState.lastRefresh = now
        let addresses = Self.readInterfaceAddresses()
        guard addresses != redirectState.addresses else { return }
        redirectState.addresses = addresses
        withTranslator { $0.setInterfaceAddresses(addresses) }
        logger.info("router addresses for --redirect: \(addresses.map { "if\($0.interfaceIndex)=\($0.address)" }.joined(separator: " "))")
    }

    /// The first IPv4 address of each interface, in interface order.
    static func readInterfaceAddresses() -> [InterfaceAddress] {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [InterfaceAddress] = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let sockaddr = current.pointee.ifa_addr, sockaddr.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let index = if_nametoindex(current.pointee.ifa_name)
            guard index != 0, !addresses.contains(where: { $0.interfaceIndex == index }) else { continue }
            let address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            addresses.append(InterfaceAddress(interfaceIndex: index, address: IPv4Address(address)))
        }
        return addresses.sorted { $0.interfaceIndex < $1.interfaceIndex }
    }

    /// `original-destination ADDR:PORT` on the control socket: the destination the client
    /// endpoint ADDR:PORT (the proxy's peer) was redirected from, as `ADDR:PORT`, or an error line.
    func originalDestinationReport(_ words: [Substring]) -> String {
        guard words.count == 2, let (address, port) = Self.parseEndpoint(words[1]) else {
            return "error: expected original-destination ADDR:PORT (the client as the proxy sees it)\n"
        }
        let found = withTranslator { $0.originalDestination(clientAddress: address, clientPort: port, now: MonotonicClock.now()) }
        guard let found else { return "error: no redirected connection from \(address):\(port)\n" }
        return "\(found.originalAddress):\(found.originalPort)\n"
    }

    static func parseEndpoint(_ text: Substring) -> (IPv4Address, UInt16)? {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 2, let address = IPv4Address(String(pieces[0])), let port = PortForward.parsePort(pieces[1]) else { return nil }
        return (address, port)
    }

    /// `masqd flows` lines of redirected connections (`tcp` or an address as filters, as for sessions).
    func redirectFlowLines(protocols: Set<UInt8>, addresses: Set<IPv4Address>) -> [RedirectSnapshot] {
        guard !settings.nat.redirects.isEmpty, protocols.isEmpty || protocols.contains(IPProtocolNumber.tcp) else { return [] }
        return withTranslator { translator in
            var flows: [RedirectSnapshot] = []
            translator.forEachRedirect(now: MonotonicClock.now()) { flow in
                if !addresses.isEmpty, !addresses.contains(flow.clientAddress), !addresses.contains(flow.originalAddress) { return }
                flows.append(flow)
            }
            return flows
        }
    }

    /// The redirect's metrics (Engine-Reports.swift's list). Lock held.
    func redirectMetrics() -> [EngineMetric] {
        let core = translator.counters
        return [
            .gauge("redirect_flows_active", translator.redirectSessionCount, "Live redirected connections (--redirect)."),
            .gauge("redirect_flows_max", translator.configuration.maxRedirectSessions, "Cap on live redirected connections (--max-redirect-flows)."),
            .counter("redirect_flows_created", core[.redirectSessionsCreated], "Redirected connections created."),
            .counter("redirect_flows_expired", core[.redirectSessionsExpired], "Redirected connections ended by their idle timeout."),
            .counter("redirected_to_proxy", core[.redirectedToProxy], "Client packets sent to the local proxy (--redirect)."),
            .counter("redirected_from_proxy", core[.redirectedFromProxy], "Proxy packets sent back to the client as from the original destination."),
            .counter("redirect_replies_unmatched", core[.redirectRepliesUnmatched], "Router packets from a redirect's local port belonging to no redirected connection: passed unchanged."),
        ]
    }
}

/// The addresses last handed to the translator, and when they were read (main loop only).
struct RedirectState {
    var lastRefresh = NATTime(nanoseconds: 0)
    var addresses: [InterfaceAddress] = []
}

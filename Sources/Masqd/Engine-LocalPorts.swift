import Logging
import NATCore

// The router's own ports (LocalPortsReader) handed to the translator: at start before the
// saved state is restored (so no restored mapping sits on one), when the WAN address changes,
// on reload, and every LocalPortsReader.refreshInterval from the main loop. Reading happens
// outside the lock; only handing the set over takes it.

struct LocalPortsState {
    var lastRefresh = NATTime(nanoseconds: 0)
    /// What the log last said, so a refresh logs only changes.
    var lastHeldCounts: (tcp: Int, udp: Int)? = nil
    var lastReserved: ClosedRange<UInt16>? = nil
    var lastForwardsOnLocalPorts = 0
    var unreadableLogged = false
    /// The last full read (TCP connections included: LocalPortsReader) and when it was made;
    /// the refreshes in between take the router's TCP connections from it.
    var lastFullRead = NATTime(nanoseconds: 0)
    var fullReadPorts: LocalPortSet? = nil
}

extension Engine {
    /// The ports to hand over now: the held ones on `address`, and the reserved range if asked for.
    static func readLocalPorts(address: IPv4Address?, reserve: Bool, tcpConnections: LocalPortSet? = nil)
        -> (reading: LocalPortsReader.Reading, reserved: ClosedRange<UInt16>?) {
        (LocalPortsReader.readHeld(address: address, tcpConnections: tcpConnections), reserve ? LocalPortsReader.readPortRange() : nil)
    }

    /// Why `settings` cannot work with the router's range `reserved`: an explicit --port-range
    /// entirely inside it leaves no port for any mapping.
    static func portRangeProblem(_ settings: EngineSettings, reserved: ClosedRange<UInt16>?) -> MasqdError? {
        let ports = settings.nat.ports
        guard let reserved, ports.lowPortRange == nil,
              reserved.lowerBound <= ports.portRange.lowerBound, ports.portRange.upperBound <= reserved.upperBound else { return nil }
        return .option("--port-range", "\(ports.portRange.lowerBound)-\(ports.portRange.upperBound)",
                       "lies inside the router's ip_local_port_range \(reserved.lowerBound)-\(reserved.upperBound): no port left for mappings (choose ports outside it, or --reserve-local-port-range no)")
    }

    /// Main loop: every refresh interval (or at once when `force`), reads and hands over the
    /// ports; a full read (the router's TCP connections too) when forced or once a
    /// `connectionsRefreshInterval`.
    func refreshLocalPorts(now: NATTime, force: Bool = false) {
        guard force || now.duration(since: localPortsState.lastRefresh) >= LocalPortsReader.refreshInterval else { return }
        localPortsState.lastRefresh = now
        let reserve = (reloading.current ?? settings).reserveLocalPortRange
        let address = withTranslator { $0.configuration.externalAddress }
        let full = force || localPortsState.fullReadPorts == nil
            || now.duration(since: localPortsState.lastFullRead) >= LocalPortsReader.connectionsRefreshInterval
        let (reading, reserved) = Engine.readLocalPorts(address: address, reserve: reserve, tcpConnections: full ? nil : localPortsState.fullReadPorts)
        let update = withTranslator { translator in
            // The address may have changed while the files were read: the next round reads again.
            translator.configuration.externalAddress == address ? translator.setLocalPorts(reading.held, reserved: reserved, now: now) : nil
        }
        guard let update else { return }
        if full {
            localPortsState.lastFullRead = now
            localPortsState.fullReadPorts = reading.held
        }
        logLocalPorts(reading, reserved: reserved, reserve: reserve, update: update)
    }

    func logLocalPorts(_ reading: LocalPortsReader.Reading, reserved: ClosedRange<UInt16>?, reserve: Bool, update: LocalPortsUpdate) {
        let counts = (tcp: reading.held.count(protocolNumber: IPProtocolNumber.tcp), udp: reading.held.count(protocolNumber: IPProtocolNumber.udp))
        if localPortsState.lastHeldCounts.map({ $0 != counts }) ?? true || localPortsState.lastReserved != reserved {
            let range = reserved.map { "ephemeral range \($0.lowerBound)-\($0.upperBound) reserved" }
                ?? (reserve ? "ephemeral range unreadable, not reserved" : "ephemeral range not reserved (reserve-local-port-range: no)")
            logger.info("router's own ports kept from mappings: \(counts.tcp) TCP, \(counts.udp) UDP held on the WAN address or the wildcard; \(range)")
            localPortsState.lastHeldCounts = counts
            localPortsState.lastReserved = reserved
        }
        if !localPortsState.unreadableLogged, !(reading.unreadable.filter { !$0.hasSuffix("6") }.isEmpty && reading.cut.isEmpty && reading.outcome.malformed == 0) {
            localPortsState.unreadableLogged = true
            logger.warning("router's own ports: unreadable \(reading.unreadable), cut at \(LocalPortsReader.maximumBytes >> 20) MiB \(reading.cut), \(reading.outcome.malformed) line(s) not understood")
        }
        if update.forwardsOnLocalPorts != localPortsState.lastForwardsOnLocalPorts {
            localPortsState.lastForwardsOnLocalPorts = update.forwardsOnLocalPorts
            if update.forwardsOnLocalPorts > 0 {
                logger.notice("\(update.forwardsOnLocalPorts) forwarded port(s) are also held or reserved by the router's own sockets: the forwards keep them")
            }
        }
        if update.mappingsEvicted > 0 {
            logger.notice("router sockets took the ports of \(update.mappingsEvicted) mapping(s): removed with \(update.sessionsCut) session(s)")
        }
    }
}

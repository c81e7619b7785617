import NATCore

// `--helpers` and `--helper-ports`: which helpers run, on which ports of which protocol;
// `--max-helper-flows-per-host`: one internal host's share of the helpers' tables.

extension EngineOptions {
    /// The helper names in order, and their registrations.
    func checkedHelpers() throws(MasqdError) -> (names: [String], registrations: [HelperRegistration]) {
        let helpers = self.helpers ?? HelperCatalog.defaultNames
        var names: [String] = []
        for name in helpers.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            switch name {
            case "none" where helpers == "none": break
            case _ where HelperCatalog.names.contains(name): if !names.contains(name) { names.append(name) }
            default: throw .option("--helpers", helpers, "unknown helper '\(name)' (known: \(HelperCatalog.names.joined(separator: ", ")), none)")
            }
        }
        var portLists: [String: [HelperPort]] = [:]
        for text in helperPorts {
            let pieces = text.split(separator: "=", omittingEmptySubsequences: false)
            guard pieces.count == 2, let entry = HelperCatalog.entry(String(pieces[0])) else {
                throw .option("--helper-ports", text, "expected NAME=[tcp:|udp:]PORT[,…] with NAME one of \(HelperCatalog.names.joined(separator: ", "))")
            }
            for portText in pieces[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard let port = Self.parseHelperPort(portText, defaultProtocol: entry.defaultProtocol) else {
                    throw .option("--helper-ports", text, "'\(portText)' is not a port (1-65535, optionally tcp: or udp:)")
                }
                portLists[entry.name, default: []].append(port)
            }
        }
        var registrations: [HelperRegistration] = []
        var claimed: [HelperPort: String] = [:]
        for name in names {
            guard let registration = HelperCatalog.registration(name, ports: portLists[name]) else { continue }
            for port in registration.ports {
                // TCP ports read as bare numbers, as they always did.
                let shown = port.protocolNumber == IPProtocolNumber.tcp ? "\(port.port)" : "\(port)"
                if let other = claimed[port] {
                    throw .option("--helper-ports", "\(name)=\(shown)", "port \(shown) is already followed by the \(other) helper")
                }
                claimed[port] = name
            }
            registrations.append(registration)
        }
        return (names, registrations)
    }

    /// `21`, `tcp:21` or `udp:69`.
    static func parseHelperPort(_ text: Substring, defaultProtocol: UInt8) -> HelperPort? {
        var protocolNumber = defaultProtocol
        var number = text
        if text.hasPrefix("tcp:") {
            protocolNumber = IPProtocolNumber.tcp
            number = text.dropFirst(4)
        } else if text.hasPrefix("udp:") {
            protocolNumber = IPProtocolNumber.udp
            number = text.dropFirst(4)
        }
        guard let port = PortForward.parsePort(number) else { return nil }
        return HelperPort(protocolNumber: protocolNumber, port: port)
    }

    func checkHelperShare(into limits: inout HelperLimits) throws(MasqdError) {
        guard let maxHelperFlowsPerHost else { return }
        guard let value = Int(maxHelperFlowsPerHost), (1...limits.connections).contains(value) else {
            throw .option("--max-helper-flows-per-host", maxHelperFlowsPerHost, "expected a number from 1 to \(limits.connections)")
        }
        limits.connectionsPerHost = value
        limits.expectationsPerHost = value
    }
}

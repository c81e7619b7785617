import NATCore
import NATHelpers

// The helpers `--helpers` can name, with their default ports: the built-in ones below, then
// those an executable built on MasqdCLI added (HelperCatalog-Added.swift).

public enum HelperCatalog {
    /// A helper `--helpers` can name: its name, the ports it follows unless `--helper-ports`
    /// says otherwise, and how to make one (a new instance at every start and reload).
    public struct Entry: Sendable {
        public var name: String
        public var defaultPorts: [HelperPort]
        public var make: @Sendable () -> any ApplicationHelper
        /// The protocol a bare port in `--helper-ports NAME=PORT` means.
        var defaultProtocol: UInt8 { defaultPorts.first?.protocolNumber ?? IPProtocolNumber.tcp }

        public init(name: String, defaultPorts: [HelperPort], make: @escaping @Sendable () -> any ApplicationHelper) {
            self.name = name
            self.defaultPorts = defaultPorts
            self.make = make
        }
    }

    static let entries: [Entry] = [
        Entry(name: "ftp", defaultPorts: [.tcp(21)], make: { FTPHelper() }),
        Entry(name: "irc", defaultPorts: [.tcp(6667)], make: { IRCHelper() }),
        Entry(name: "tftp", defaultPorts: [.udp(69)], make: { TFTPHelper() }),
        // Not on by default (README "The SIP helper"): phones that handle NAT themselves
        // (STUN, a public Contact) need no ALG, and many operators turn ALGs off.
        Entry(name: "sip", defaultPorts: [.udp(5060), .tcp(5060)], make: { SIPHelper() }),
        // Not on by default either: PPTP is obsolete; name it to let two LAN hosts call one server.
        Entry(name: "pptp", defaultPorts: [.tcp(1723)], make: { PPTPHelper() }),
    ]

    /// Every name `--helpers` accepts.
    static var names: [String] { all.map(\.name) }

    /// On when `--helpers` is not given.
    static let defaultNames = "ftp,irc,tftp"

    static func entry(_ name: String) -> Entry? { all.first { $0.name == name } }

    /// The registration for a helper name, or nil if there is no such helper.
    static func registration(_ name: String, ports: [HelperPort]?) -> HelperRegistration? {
        guard let entry = entry(name) else { return nil }
        return HelperRegistration(helper: entry.make(), ports: ports ?? entry.defaultPorts)
    }
}

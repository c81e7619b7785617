import NATCore
import NATHelpers

// The helpers `--helpers` can name, with their default ports.

enum HelperCatalog {
    struct Entry {
        var name: String
        var defaultPorts: [HelperPort]
        var make: @Sendable () -> any ApplicationHelper
        /// The protocol a bare port in `--helper-ports NAME=PORT` means.
        var defaultProtocol: UInt8 { defaultPorts.first?.protocolNumber ?? IPProtocolNumber.tcp }
    }

    static let entries: [Entry] = [
        Entry(name: "ftp", defaultPorts: [.tcp(21)], make: { FTPHelper() }),
        Entry(name: "irc", defaultPorts: [.tcp(6667)], make: { IRCHelper() }),
        Entry(name: "tftp", defaultPorts: [.udp(69)], make: { TFTPHelper() }),
        // Not on by default (README "The SIP helper"): phones that handle NAT themselves
        // (STUN, a public Contact) need no ALG, and many operators turn ALGs off.
        Entry(name: "sip", defaultPorts: [.udp(5060)], make: { SIPHelper() }),
    ]

    /// Every name `--helpers` accepts.
    static let names = entries.map(\.name)

    /// On when `--helpers` is not given.
    static let defaultNames = "ftp,irc,tftp"

    static func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The registration for a helper name, or nil if there is no such helper.
    static func registration(_ name: String, ports: [HelperPort]?) -> HelperRegistration? {
        guard let entry = entry(name) else { return nil }
        return HelperRegistration(helper: entry.make(), ports: ports ?? entry.defaultPorts)
    }
}

import NATCore
import NATHelpers

// The helpers `--helpers` can name, with their default ports.

enum HelperCatalog {
    /// Every name `--helpers` accepts.
    static let names = ["ftp", "irc"]

    static func defaultPorts(_ name: String) -> [UInt16] {
        switch name {
        case "ftp": [21]
        case "irc": [6667]
        default: []
        }
    }

    /// The registration for a helper name, or nil if it is not implemented yet.
    static func registration(_ name: String, ports: [UInt16]?) -> HelperRegistration? {
        let ports = ports ?? defaultPorts(name)
        switch name {
        case "ftp": return HelperRegistration(helper: FTPHelper(), ports: ports)
        case "irc": return HelperRegistration(helper: IRCHelper(), ports: ports)
        default: return nil
        }
    }
}

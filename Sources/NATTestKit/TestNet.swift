import NATCore

// The addresses tests use, all from the documentation ranges (RFC 5737), and a translator
// set up for them: the inside network 192.0.2.0/24 (TEST-NET-1) is masqueraded behind
// 203.0.113.1 (TEST-NET-3); hosts on the outside live in 198.51.100.0/24 (TEST-NET-2).

public enum TestNet {
    /// The translator's external (WAN) address.
    public static let external = IPv4Bytes(203, 0, 113, 1)
    /// The inside network, as `NATConfiguration.internalPrefixes` takes it.
    public static let insidePrefix = IPv4Prefix("192.0.2.0/24")!
    public static let insideHost = IPv4Bytes(192, 0, 2, 10)
    public static let otherInsideHost = IPv4Bytes(192, 0, 2, 11)
    public static let outsideHost = IPv4Bytes(198, 51, 100, 5)
    public static let otherOutsideHost = IPv4Bytes(198, 51, 100, 6)
    /// The time the drivers send at unless told otherwise (NATCore takes time as a value).
    public static let start = NATTime.seconds(1000)

    /// A translator masquerading `insidePrefix` behind `external`, with `helpers` attached and
    /// tables sized for tests (1024 mappings and sessions); `configure` changes the rest.
    public static func translator(
        helpers: [HelperRegistration] = [],
        _ configure: (inout NATConfiguration) -> Void = { _ in }
    ) -> NATTranslator {
        var configuration = NATConfiguration(externalAddress: external.address, internalPrefixes: [insidePrefix])
        configuration.maxSessions = 1024
        configuration.maxMappings = 1024
        configuration.helpers = helpers
        configure(&configuration)
        return NATTranslator(configuration: configuration)
    }
}

/// An address and port on one side of the translator.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Bytes
    public var port: UInt16
    public init(_ address: IPv4Bytes, _ port: UInt16) {
        self.address = address
        self.port = port
    }
    public var description: String { "\(address):\(port)" }
}

/// Which side of the translator a host is on.
public enum NATSide: Sendable, Equatable {
    /// A host in an internal prefix (the LAN).
    case inside
    /// A host beyond the external address (the internet).
    case outside
}

import NATCore

// `--audit-log mappings|sessions`, `--ipfix-collector ADDR:PORT`, `--ipfix-domain-id N`: where
// the translator's NAT events go (AuditExporter.swift). Fixed while running (a reload that
// changes them is refused).

/// Which events become journal lines.
public enum AuditLogLevel: String, Sendable, Equatable {
    /// Every mapping created and removed (internal endpoint ↔ external port): the audit minimum.
    case mappings
    /// Every session (mapping × remote endpoint) as well.
    case sessions

    /// With port blocks, `mappings` means the blocks: one line per block, none per mapping.
    func logs(_ kind: NATEventKind, portBlocks: Bool = false) -> Bool {
        self == .sessions || (portBlocks ? kind.isPortBlock : !kind.isSession)
    }
}

public struct IPFIXSettings: Sendable, Equatable {
    /// Where the messages go (UDP; the same ADDR:PORT shape as --metrics).
    public var collector: MetricsEndpoint
    public var domainID: UInt32
}

public struct AuditSettings: Sendable, Equatable {
    /// nil: no journal lines.
    public var journal: AuditLogLevel? = nil
    /// nil: no IPFIX export.
    public var ipfix: IPFIXSettings? = nil
    /// Port blocks are on (--port-block-size): block events replace mapping events.
    public var portBlocks = false

    public init() {}

    /// Any consumer at all: without one the translator records nothing.
    public var isEnabled: Bool { journal != nil || ipfix != nil }
}

extension EngineOptions {
    func checkedAudit(queue: UInt16, portBlocks: Bool) throws(MasqdError) -> AuditSettings {
        var audit = AuditSettings()
        audit.portBlocks = portBlocks
        if let auditLog {
            guard let level = AuditLogLevel(rawValue: auditLog) else {
                throw .option("--audit-log", auditLog, "expected mappings or sessions")
            }
            audit.journal = level
        }
        guard let ipfixCollector else {
            if let ipfixDomainId { throw .option("--ipfix-domain-id", ipfixDomainId, "needs --ipfix-collector") }
            return audit
        }
        guard let collector = MetricsEndpoint(ipfixCollector) else {
            throw .option("--ipfix-collector", ipfixCollector, "expected ADDR:PORT with an IPv4 address and a UDP port 1-65535, e.g. 192.0.2.50:4739")
        }
        var domainID = UInt32(queue)
        if let ipfixDomainId {
            guard let value = UInt32(ipfixDomainId) else {
                throw .option("--ipfix-domain-id", ipfixDomainId, "expected a number from 0 to 4294967295")
            }
            domainID = value
        }
        audit.ipfix = IPFIXSettings(collector: collector, domainID: domainID)
        return audit
    }
}

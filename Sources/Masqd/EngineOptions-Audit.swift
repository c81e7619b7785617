import NATCore

// `--audit-log mappings|sessions`, `--ipfix-collector ADDR:PORT`, `--ipfix-domain-id N`: where
// the translator's NAT events go (AuditExporter.swift). Fixed while running (a reload that
// changes them is refused).

/// Which events become journal lines.
public enum AuditLogLevel: String, Sendable, Equatable {
    /// Every mapping created and removed (internal endpoint ↔ external port): the audit
    /// minimum. Address-only rows too: each is mapping and session in one (the host's use of
    /// the WAN address with that remote), and the only record of it.
    case mappings
    /// Every session (mapping × remote endpoint) and redirected connection as well.
    case sessions

    /// The one rule of which events are audited, for the journal at its level and for IPFIX
    /// (`AuditSettings.exports`). With port blocks, `mappings` means the blocks: one line per
    /// block, none per mapping; address-only rows stay (a block covers ports, they have none).
    func logs(_ kind: NATEventKind, portBlocks: Bool = false) -> Bool {
        switch kind {
        case .sessionEstablished, .helperStateChanged: false // the fast path's and the HA sync's cues, no audit records
        case .mappingCreated, .mappingRemoved: self == .sessions || !portBlocks
        case .portBlockAllocated, .portBlockReleased, .addressOnlyCreated, .addressOnlyRemoved: true
        case .sessionCreated, .sessionRemoved, .redirectCreated, .redirectRemoved: self == .sessions
        }
    }
}

public struct IPFIXSettings: Sendable, Equatable {
    /// Where the messages go (UDP; the same ADDR:PORT shape as --metrics).
    public var collector: IPv4Endpoint
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

    /// Whether an event of `kind` becomes a journal line.
    func journals(_ kind: NATEventKind) -> Bool { journal?.logs(kind, portBlocks: portBlocks) ?? false }

    /// Whether it becomes an IPFIX record. IPFIX has no level: everything `sessions` logs, but
    /// with port blocks only what `mappings` does — the point of blocks is fewer records.
    func exports(_ kind: NATEventKind) -> Bool {
        ipfix != nil && (portBlocks ? AuditLogLevel.mappings : .sessions).logs(kind, portBlocks: portBlocks)
    }
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
        guard let collector = IPv4Endpoint(ipfixCollector) else {
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

// Increments: what the active's translator made or removed since the last full resync, one
// record per NAT event (NATCore's NATEvent; mappings, sessions, address-only rows and
// redirected connections created, established, removed; port block kinds decode but are not
// sent), streamed in numbered batches between resyncs so that a takeover continues the flows
// made since the last one. A batch's number is per sender epoch, from 1, one per batch
// (not per message): the standby applies batches in that order, acks the last it applied and
// nacks a gap; the active resends (SyncIncrementQueue). Record, 22 bytes, big-endian:
//
//   0 kind (NATEventKind's raw value)   1 reason (NATEventReason's)   2 protocol   3 reserved 0
//   4 internal address   8 internal port   10 external port   12 external address
//   16 remote address   20 remote port   (a mapping's remote is 0.0.0.0:0)
//
// The engine converts to and from NATEvent.

import NATCore

struct SyncIncrement: Equatable, Sendable {
    var kind: UInt8
    var reason: UInt8
    /// A mapping's remote endpoint is 0.0.0.0:0.
    var flow: NATFlow
    var externalEndpoint: IPv4Endpoint

    static let size = 22
    /// Kinds 1-11 (NATEventKind's raw values: mappings, sessions, port blocks, address-only
    /// rows, redirects); any other record is malformed.
    static let kinds: ClosedRange<UInt8> = 1...11

    func encode(into out: inout [UInt8]) {
        out += [kind, reason, flow.protocolNumber, 0]
        SyncMessage.put32(flow.internalEndpoint.address.value, &out)
        SyncMessage.put16(flow.internalEndpoint.port, &out)
        SyncMessage.put16(externalEndpoint.port, &out)
        SyncMessage.put32(externalEndpoint.address.value, &out)
        SyncMessage.put32(flow.remoteEndpoint.address.value, &out)
        SyncMessage.put16(flow.remoteEndpoint.port, &out)
    }

    /// The record at `offset` (`size` bytes there), or nil when its kind or reserved byte is wrong.
    static func decode(_ b: [UInt8], at offset: Int) -> SyncIncrement? {
        guard kinds.contains(b[offset]), b[offset + 3] == 0 else { return nil }
        func endpoint(address: Int, port: Int) -> IPv4Endpoint {
            IPv4Endpoint(SyncMessage.get32(b, offset + address), SyncMessage.get16(b, offset + port))
        }
        let flow = NATFlow(protocolNumber: b[offset + 2], internalEndpoint: endpoint(address: 4, port: 8),
                           remoteEndpoint: endpoint(address: 16, port: 20))
        return SyncIncrement(kind: b[offset], reason: b[offset + 1], flow: flow, externalEndpoint: endpoint(address: 12, port: 10))
    }
}

/// One batch of increments: its number, the active's wall clock when it was made (ns since
/// 1970: the lifetimes the standby keeps are deadlines on that clock), the records, or (a
/// batch of its own, no records) one helper connection's state (SyncHelperState.swift).
struct SyncIncrementBatch: Equatable, Sendable {
    var number: UInt64
    var wallClock: UInt64
    var records: [SyncIncrement]
    var helperStates: [SyncHelperState] = []

    /// What it weighs against the standby's bounds, in records (a helper state by its bytes).
    var weight: Int { records.count + helperStates.reduce(0) { $0 + 1 + $1.state.count / SyncIncrement.size } }
    /// Increments it carries (records and helper states).
    var itemCount: Int { records.count + helperStates.count }
}

// Address-only translations in the state file (version 3; layout at the top of
// NATStateSnapshot.swift): saved with what is left of their lifetime, restored through the
// table's own cap, each (protocol, remote) at most once.

extension NATStateSnapshot {
    struct AddressOnlyRecord: Sendable, Equatable {
        var protocolNumber: UInt8
        var internalAddress: UInt32
        var remoteAddress: UInt32
        var remaining: NATDuration

        func encode(_ out: inout ByteWriter) {
            out.u32(internalAddress)
            out.u32(remoteAddress)
            out.u64(remaining.nanoseconds)
            out.u8(protocolNumber)
            out.zeros(3)
        }

        init(protocolNumber: UInt8, internalAddress: UInt32, remoteAddress: UInt32, remaining: NATDuration) {
            self.protocolNumber = protocolNumber
            self.internalAddress = internalAddress
            self.remoteAddress = remoteAddress
            self.remaining = remaining
        }

        init(_ r: inout ByteReader, index: Int, longest: NATDuration) throws(NATStateError) {
            func bad(_ reason: String) -> NATStateError { .invalidRecord(kind: "address-only", index: index, reason: reason) }
            internalAddress = r.u32()
            remoteAddress = r.u32()
            let remaining = r.u64()
            protocolNumber = r.u8()
            let reserved = [r.u8(), r.u8(), r.u8()]
            guard TransportProtocol(protocolNumber: protocolNumber) == nil else { throw bad("protocol \(protocolNumber) has ports") }
            guard internalAddress != 0 else { throw bad("internal address 0.0.0.0") }
            guard remaining > 0, remaining <= longest.nanoseconds else {
                throw bad("remaining lifetime \(remaining) ns outside 1…\(longest.nanoseconds)")
            }
            guard reserved == [0, 0, 0] else { throw bad("reserved bytes set") }
            self.remaining = NATDuration(nanoseconds: remaining)
        }
    }

    /// Address-only translations saved.
    public var addressOnlyFlowCount: Int { addressOnlyFlows.count }
}

extension NATTranslator {
    func exportAddressOnly(into snapshot: inout NATStateSnapshot, now: NATTime) {
        let longest = longestTimeout
        snapshot.addressOnlyFlows.reserveCapacity(addressOnly.count)
        for i in 0..<addressOnly.highWater {
            let flow = addressOnly[Int32(i)]
            guard flow.internalAddress != 0, flow.expires > now.nanoseconds else { continue }
            snapshot.addressOnlyFlows.append(.init(
                protocolNumber: flow.protocolNumber, internalAddress: flow.internalAddress, remoteAddress: flow.remoteAddress,
                remaining: min(NATDuration(nanoseconds: flow.expires - now.nanoseconds), longest)))
        }
    }

    /// Each saved flow is restored unless its lifetime ran out (`sessionsExpired`), its host is
    /// no longer internal (`sessionsNotInConfiguration`), its (protocol, remote) is already
    /// taken, the table is full or the host has its share (`sessionsNoRoom`).
    func importAddressOnly(_ snapshot: NATStateSnapshot, downtime: NATDuration, now: NATTime, summary: inout NATStateRestoreSummary) {
        for record in snapshot.addressOnlyFlows {
            guard record.remaining > downtime else { summary.sessionsExpired += 1; continue }
            guard isInternal(IPv4Address(record.internalAddress)) else { summary.sessionsNotInConfiguration += 1; continue }
            let hash = addressOnly.hash(protocolNumber: record.protocolNumber, remoteAddress: record.remoteAddress)
            guard addressOnly.count < addressOnly.capacity,
                  addressOnly.find(protocolNumber: record.protocolNumber, remoteAddress: record.remoteAddress, hash: hash) < 0,
                  hosts.sessions(of: record.internalAddress) < UInt32(clamping: configuration.maxSessionsPerHost),
                  hosts.add(record.internalAddress)
            else { summary.sessionsNoRoom += 1; continue }
            let remaining = min(record.remaining.nanoseconds - downtime.nanoseconds, configuration.timeouts.other.nanoseconds)
            let row = addressOnly.insert(AddressOnlyFlow(expires: now.nanoseconds &+ remaining, remoteAddress: record.remoteAddress,
                                                         internalAddress: record.internalAddress, hash: hash,
                                                         protocolNumber: record.protocolNumber))
            if row >= 0 { recordAddressOnly(.addressOnlyCreated, row, reason: .restored) }
            summary.addressOnlyFlowsRestored += 1
        }
    }
}

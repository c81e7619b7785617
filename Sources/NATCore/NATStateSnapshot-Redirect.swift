// Redirected connections in the state file (format version 4; layout at the top of
// NATStateSnapshot.swift): a count after the helper records, then the records. Older files
// have none and read as before; a file without any is still written as version 1 or 2, so an
// older masqd reads it too.

extension NATStateSnapshot {
    struct RedirectRecord: Sendable, Equatable {
        /// The LAN client's endpoint, the destination it dialled, the router's where the proxy got it.
        var client: IPv4Endpoint
        var original: IPv4Endpoint
        var local: IPv4Endpoint
        var lifetime: LifetimeRecord
    }

    public var redirectCount: Int { redirects.count }

    func encodeRedirects(_ out: inout ByteWriter) {
        guard !redirects.isEmpty else { return } // version 1 or 2: no section
        out.u32(UInt32(redirects.count))
        for r in redirects {
            out.u32(r.client.address.value)
            out.u32(r.original.address.value)
            out.u32(r.local.address.value)
            out.u64(r.lifetime.remaining.nanoseconds)
            out.u16(r.client.port)
            out.u16(r.original.port)
            out.u16(r.local.port)
            out.u8(r.lifetime.tcpState.rawValue)
            out.u8(r.lifetime.tcpFlagsSeen)
        }
    }

    /// The redirect record count of a version 4 file (0 before), read where the helper records
    /// end; a file too short to hold it is truncated.
    static func redirectCount(_ bytes: [UInt8], version: UInt16, at offset: Int) throws(NATStateError) -> Int {
        guard version >= 4 else { return 0 }
        guard bytes.count >= offset + 4 + StateFormat.checksumBytes else {
            throw .truncated(length: bytes.count, expected: offset + 4 + StateFormat.checksumBytes)
        }
        var reader = ByteReader(bytes, at: offset)
        let count = Int(reader.u32())
        // Version 4 is written only for redirected connections: without any, the file is not one
        // this masqd writes (it would encode back as version 1 or 2).
        guard count > 0 else { throw .invalidHeader("version 4 without redirect records") }
        // Bounded by what the bytes can hold, so the length check below cannot overflow.
        guard count <= (bytes.count - offset) / StateFormat.redirectBytes else {
            throw .truncated(length: bytes.count, expected: offset + 4 + count * StateFormat.redirectBytes + StateFormat.checksumBytes)
        }
        return count
    }

    /// Every field checked, and one record per (client endpoint, local port) as in the table.
    static func readRedirects(_ r: inout ByteReader, count: Int, longest: NATDuration) throws(NATStateError) -> [RedirectRecord] {
        var records: [RedirectRecord] = []
        records.reserveCapacity(count)
        var keys = Set<UInt64>()
        for index in 0..<count {
            func bad(_ reason: String) -> NATStateError { .invalidRecord(kind: "redirect", index: index, reason: reason) }
            let clientAddress = r.u32(), originalAddress = r.u32(), localAddress = r.u32()
            let remaining = r.u64()
            let clientPort = r.u16(), originalPort = r.u16(), localPort = r.u16()
            let stateByte = r.u8(), flags = r.u8()
            guard clientAddress != 0, originalAddress != 0, localAddress != 0 else { throw bad("an address is 0") }
            guard clientPort != 0, originalPort != 0, localPort != 0 else { throw bad("a port is 0") }
            guard let state = TCPSessionState(rawValue: stateByte), state != .none else { throw bad("TCP state \(stateByte)") }
            guard flags & ~(TCPSessionState.finBoth | TCPSessionState.openedInbound) == 0 else { throw bad("TCP flags seen \(flags)") }
            guard remaining > 0, remaining <= longest.nanoseconds else { throw bad("remaining lifetime \(remaining) ns") }
            let key = UInt64(clientAddress) << 32 | UInt64(clientPort) << 16 | UInt64(localPort)
            guard keys.insert(key).inserted else { throw bad("a second record of its client endpoint and local port") }
            records.append(RedirectRecord(
                client: IPv4Endpoint(clientAddress, clientPort), original: IPv4Endpoint(originalAddress, originalPort),
                local: IPv4Endpoint(localAddress, localPort),
                lifetime: LifetimeRecord(tcpState: state, tcpFlagsSeen: flags, remaining: NATDuration(nanoseconds: remaining))))
        }
        return records
    }
}

extension NATTranslator {
    func exportRedirects(now: NATTime, longest: NATDuration) -> [NATStateSnapshot.RedirectRecord] {
        var records: [NATStateSnapshot.RedirectRecord] = []
        for i in 0..<redirectSessions.highWater {
            let s = redirectSessions[Int32(i)]
            guard s.localPort != 0, s.expires > now.nanoseconds else { continue }
            records.append(.init(
                client: IPv4Endpoint(s.clientAddress, s.clientPort), original: IPv4Endpoint(s.originalAddress, s.originalPort),
                local: IPv4Endpoint(s.localAddress, s.localPort),
                lifetime: .init(tcpState: s.tcpState, tcpFlagsSeen: s.tcpFlagsSeen,
                                remaining: min(NATDuration(nanoseconds: s.expires - now.nanoseconds), longest))))
        }
        return records
    }

    /// Into a fresh table: what outlived the downtime, fits the caps, and whose local port is
    /// still a redirect's.
    func restoreRedirects(_ records: [NATStateSnapshot.RedirectRecord], downtime: NATDuration, now: NATTime,
                          summary: inout NATStateRestoreSummary) {
        for record in records {
            let client = record.client.address.value
            guard record.lifetime.remaining > downtime, configuration.redirects.contains(where: { $0.localPort == record.local.port }),
                  redirectSessions.count < redirectSessions.capacity,
                  redirectHosts.sessions(of: client) < UInt32(clamping: configuration.maxRedirectSessionsPerHost),
                  redirectHosts.add(client) else {
                summary.redirectsNotRestored += 1
                continue
            }
            let hash = redirectSessions.hash(clientAddress: client, clientPort: record.client.port, localPort: record.local.port)
            let remaining = record.lifetime.remaining(after: downtime, protocolNumber: IPProtocolNumber.tcp, timeouts: configuration.timeouts)
            let row = redirectSessions.insert(RedirectSession(
                expires: now.nanoseconds &+ remaining.nanoseconds, clientAddress: client,
                originalAddress: record.original.address.value, localAddress: record.local.address.value, hash: hash,
                clientPort: record.client.port, originalPort: record.original.port, localPort: record.local.port,
                tcpState: record.lifetime.tcpState, tcpFlagsSeen: record.lifetime.tcpFlagsSeen))
            if row >= 0 { recordRedirect(.redirectCreated, row, reason: .restored) }
            summary.redirectsRestored += 1
        }
    }
}

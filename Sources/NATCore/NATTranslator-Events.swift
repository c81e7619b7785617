// Recording NAT events (NATEvent.swift) where mappings and sessions are made and removed.
// Off until `enableEvents`: each site then costs one predictable branch on the ring's
// capacity. Events are made only when a mapping or session is created or removed, never
// for a packet crossing an established one.

extension NATTranslator {
    /// Starts recording events into a ring of `capacity` (rounded up to a power of two),
    /// allocated here once; 0 stops recording. Waiting events are dropped. The port forwards
    /// installed by `init` are recorded now (call it before any traffic, at `now`).
    public func enableEvents(capacity: Int, now: NATTime) {
        events.allocate(capacity: capacity)
        currentTime = now
        for i in 0..<mappings.store.highWater where mappings[Int32(i)].protocolNumber != 0 && mappings[Int32(i)].isStatic {
            recordMapping(.mappingCreated, Int32(i), reason: .portForward)
        }
    }

    public var eventsEnabled: Bool { events.capacity > 0 }
    public var eventCapacity: Int { events.capacity }
    public var eventsWaiting: Int { events.count }

    /// Hands the waiting events to `body`, oldest first. Call with the translator's lock held;
    /// `body` must not block (copy the events somewhere and return).
    public func drainEvents(_ body: (NATEvent) -> Void) {
        events.drain(body)
    }

    /// Moves the waiting events into the daemon's `queue` in block copies (the lock held);
    /// returns how many did not fit there and were dropped.
    public func moveEvents(into queue: inout NATEventRing) -> Int {
        events.move(into: &queue)
    }

    /// Copies the waiting events into `queue` and keeps them (a consumer before the last, under
    /// the lock); returns how many did not fit there.
    public func copyEvents(into queue: inout NATEventRing) -> Int {
        events.copy(into: &queue)
    }

    /// Drops the waiting events (every consumer has its copy).
    public func discardEvents() {
        events.removeAll()
    }

    @inline(__always)
    func record(_ event: NATEvent) {
        if events.push(event) {
            counters[.natEventsRecorded] &+= 1
        } else {
            counters[.natEventsLost] &+= 1
        }
    }

    /// A mapping's event carries its own external address: the WAN address or its pool address.
    @inline(__always)
    func recordMapping(_ kind: NATEventKind, _ row: Int32, reason: NATEventReason) {
        guard events.capacity != 0 else { return }
        let mapping = mappings[row]
        record(NATEvent(timeNanoseconds: currentTime.nanoseconds, kind: kind, reason: reason, protocolNumber: mapping.protocolNumber,
                        internalAddress: mapping.internalAddress, internalPort: mapping.internalPort,
                        externalAddress: externalAddress(index: mapping.externalIndex)?.value ?? 0, externalPort: mapping.externalPort))
    }

    @inline(__always)
    func recordSession(_ kind: NATEventKind, _ row: Int32, reason: NATEventReason) {
        guard events.capacity != 0 else { return }
        let session = sessions[row]
        record(NATEvent(timeNanoseconds: currentTime.nanoseconds, kind: kind, reason: reason, protocolNumber: session.protocolNumber,
                        internalAddress: session.internalAddress, internalPort: session.internalPort,
                        externalAddress: externalAddress(index: session.externalIndex)?.value ?? 0,
                        externalPort: session.externalPort,
                        remoteAddress: session.remoteAddress, remotePort: session.remotePort))
    }

    /// An address-only row's event: the row's protocol, host and remote, the WAN address it
    /// leaves from (the rows are made with it only, and flushed when it changes), no ports.
    @inline(__always)
    func recordAddressOnly(_ kind: NATEventKind, _ row: Int32, reason: NATEventReason) {
        guard events.capacity != 0 else { return }
        let flow = addressOnly[row]
        record(NATEvent(timeNanoseconds: currentTime.nanoseconds, kind: kind, reason: reason, protocolNumber: flow.protocolNumber,
                        internalAddress: flow.internalAddress, internalPort: 0,
                        externalAddress: configuration.externalAddress?.value ?? 0, externalPort: 0,
                        remoteAddress: flow.remoteAddress, remotePort: 0))
    }

    /// A redirected connection's event: the client as internal, the original destination as
    /// remote, the router's local address and port it was delivered to as external.
    @inline(__always)
    func recordRedirect(_ kind: NATEventKind, _ row: Int32, reason: NATEventReason) {
        guard events.capacity != 0 else { return }
        let redirect = redirectSessions[row]
        record(NATEvent(timeNanoseconds: currentTime.nanoseconds, kind: kind, reason: reason, protocolNumber: IPProtocolNumber.tcp,
                        internalAddress: redirect.clientAddress, internalPort: redirect.clientPort,
                        externalAddress: redirect.localAddress, externalPort: redirect.localPort,
                        remoteAddress: redirect.originalAddress, remotePort: redirect.originalPort))
    }

    /// What ended an idle session: its TCP state says whether it was closed or reset first.
    @inline(__always)
    static func idleReason(_ state: TCPSessionState) -> NATEventReason {
        switch state {
        case .reset: .tcpReset
        case .closing, .timeWait: .tcpClosed
        default: .expired
        }
    }

    /// Before the tables are emptied at once (a WAN address change): one removal event per
    /// session, then per mapping, then per address-only row, with the address they were made
    /// with. Redirected connections stay (they use the router's LAN-side address, not the WAN's).
    func recordFlushOfAll(reason: NATEventReason) {
        guard events.capacity != 0 else { return }
        for i in 0..<sessions.highWater where sessions[Int32(i)].mapping >= 0 {
            recordSession(.sessionRemoved, Int32(i), reason: reason)
        }
        for i in 0..<mappings.store.highWater where mappings[Int32(i)].protocolNumber != 0 {
            recordMapping(.mappingRemoved, Int32(i), reason: reason)
        }
        for i in 0..<addressOnly.highWater where addressOnly[Int32(i)].internalAddress != 0 {
            recordAddressOnly(.addressOnlyRemoved, Int32(i), reason: reason)
        }
    }

    /// Follows a change of the WAN address at `now` (the time its flush events carry).
    public func setExternalAddress(_ address: IPv4Address?, now: NATTime) {
        currentTime = now
        setExternalAddress(address)
    }

    /// `setLocalPorts` at `now` (the time its eviction events carry).
    @discardableResult
    public func setLocalPorts(_ held: LocalPortSet, reserved: ClosedRange<UInt16>?, now: NATTime) -> LocalPortsUpdate {
        currentTime = now
        return setLocalPorts(held, reserved: reserved)
    }
}

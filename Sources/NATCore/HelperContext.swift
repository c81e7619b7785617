// What a helper sees of the connection it inspects, and what it may ask of the core.

public struct HelperContext {
    public let direction: HelperDirection
    /// A TCP byte stream, or one UDP datagram.
    public let transport: HelperTransport
    /// The most bytes `.holdFrom` can hold back on a stream (`HelperLimits.heldBytes`);
    /// 0 on a datagram flow.
    public let holdCapacity: Int
    /// True when the client (the side that opened the connection) is the internal endpoint.
    public let clientIsInternal: Bool
    public let internalAddress: IPv4Address
    public let internalPort: UInt16
    /// The address and port the internal endpoint appears as outside.
    public let externalAddress: IPv4Address
    public let externalPort: UInt16
    public let remoteAddress: IPv4Address
    public let remotePort: UInt16
    /// 64 bytes of per-connection state for the helper, zeroed when the connection starts.
    public let state: UnsafeMutableRawBufferPointer

    init(direction: HelperDirection, clientIsInternal: Bool, internalAddress: IPv4Address, internalPort: UInt16,
         externalAddress: IPv4Address, externalPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16,
         state: UnsafeMutableRawBufferPointer, transport: HelperTransport, translator: NATTranslator,
         sessionRow: Int32, helperIndex: Int, dataCount: Int, holdCapacity: Int) {
        self.direction = direction
        self.transport = transport
        self.holdCapacity = holdCapacity
        self.clientIsInternal = clientIsInternal
        self.internalAddress = internalAddress
        self.internalPort = internalPort
        self.externalAddress = externalAddress
        self.externalPort = externalPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.state = state
        self.translator = translator
        self.sessionRow = sessionRow
        self.helperIndex = helperIndex
        self.dataCount = dataCount
    }

    unowned(unsafe) let translator: NATTranslator
    let sessionRow: Int32
    let helperIndex: Int
    let dataCount: Int

    /// Edits `replace` will still accept in this call: check before making an expectation
    /// for a line you are about to rewrite (the core's edit log may be full of edits the
    /// peer has not acknowledged yet).
    public var editsRemaining: Int { translator.stagedEditRoom - translator.stagedEditCount }

    /// True when the bytes come from the internal endpoint.
    public var senderIsInternal: Bool { (direction == .fromClient) == clientIsInternal }

    /// Replaces `range` of the inspected bytes with what `write` produces (at most
    /// `HelperLimits.maxReplacement` bytes). Edits must come in increasing, non-overlapping
    /// order; at most `HelperLimits.editsPerInspect` per call on a stream,
    /// `editsPerDatagram` per datagram. Returns false (and changes nothing) otherwise.
    @discardableResult
    public mutating func replace(_ range: Range<Int>, _ write: (inout HelperTextWriter) -> Void) -> Bool {
        translator.stageEdit(range, dataCount: dataCount, write)
    }

    /// Expects a connection (or a UDP flow) from `remote` (any address when nil: a DCC peer
    /// is not known; any port when `remotePort` is nil: TFTP's server answers from a new
    /// port) to the internal endpoint `internalAddress:internalPort`, and returns the
    /// external port it must be told to use — or nil when the limits refuse (counted as
    /// `.limit`). The mapping is made now (or the endpoint's existing one is used) and kept
    /// for the expectation's lifetime; the flow may arrive once. Expecting the same flow again
    /// renews the expectation.
    public mutating func expectConnection(
        protocolNumber: UInt8 = IPProtocolNumber.tcp,
        from remote: IPv4Address?, port remotePort: UInt16?,
        to internalAddress: IPv4Address, port internalPort: UInt16
    ) -> UInt16? {
        counted(translator.expect(
            protocolNumber: protocolNumber, remote: remote, remotePort: remotePort ?? 0,
            internalAddress: internalAddress, internalPort: internalPort, master: sessionRow))
    }

    /// Expects a flow on each of two consecutive internal ports, `internalPort` (even: RTP)
    /// and the next (RTCP), from `remote` (its port + 1 for the second when `remotePort` is
    /// given), through two consecutive external ports, the first even. Returns the first
    /// external port, or nil when the limits refuse or the pair cannot be kept consecutive
    /// (counted as `.limit`). Each expectation added counts (a renewed one does not). When
    /// only `internalPort` is mapped already (RTCP multiplexed on RTP, RFC 5761), its external
    /// port is returned and only it is expected.
    public mutating func expectPortPair(
        protocolNumber: UInt8 = IPProtocolNumber.udp,
        from remote: IPv4Address?, port remotePort: UInt16?,
        to internalAddress: IPv4Address, port internalPort: UInt16
    ) -> UInt16? {
        counted(translator.expectPair(
            protocolNumber: protocolNumber, remote: remote, remotePort: remotePort ?? 0,
            internalAddress: internalAddress, internalPort: internalPort, master: sessionRow))
    }

    /// PPTP (RFC 2637), the internal host calling out: the call ID the remote must be told in
    /// place of the host's `callID` (its Outgoing-Call-Request), unique for that remote. GRE
    /// to that NAT call ID will reach the host with its own call ID once `confirmGRECall`
    /// names the remote's. Nil when the table is full (counted as `.limit`).
    public mutating func expectGRECall(callID: UInt16) -> UInt16? {
        guard let id = translator.expectGRECall(client: internalAddress.value, server: remoteAddress.value, clientCallID: callID,
                                                now: translator.currentTime) else {
            count(.limit)
            return nil
        }
        count(.expectation)
        return id
    }

    /// The remote answered the call `natCallID` with its own `remoteCallID` (its
    /// Outgoing-Call-Reply): the host's GRE to that ID now leaves translated. Returns the
    /// host's call ID to put back in place of `natCallID`, or nil for no live call.
    public mutating func confirmGRECall(natCallID: UInt16, remoteCallID: UInt16) -> UInt16? {
        translator.confirmGRECall(client: internalAddress.value, server: remoteAddress.value, natCallID: natCallID,
                                  serverCallID: remoteCallID, now: translator.currentTime)
    }

    /// The host's call ID behind `natCallID` (messages from the remote that name it), or nil.
    public func internalGRECallID(natCallID: UInt16) -> UInt16? {
        translator.internalGRECallID(client: internalAddress.value, server: remoteAddress.value, natCallID: natCallID,
                                     now: translator.currentTime)
    }

    /// The NAT call ID of the host's call `callID` (messages from the host that name it), or nil.
    public func natGRECallID(callID: UInt16) -> UInt16? {
        translator.natGRECallID(client: internalAddress.value, server: remoteAddress.value, clientCallID: callID,
                                now: translator.currentTime)
    }

    /// Counts what an expectation call did: each expectation added (a renewed one is not
    /// counted again), or `.limit` when refused. Returns the external port.
    private mutating func counted(_ made: (port: UInt16, added: Int)?) -> UInt16? {
        guard let made else {
            count(.limit)
            return nil
        }
        for _ in 0..<made.added { count(.expectation) }
        return made.port
    }

    /// Counts an event for this helper (shown by `masqd stats`).
    public mutating func count(_ event: HelperEvent) {
        translator.countHelperEvent(helperIndex, event)
    }
}

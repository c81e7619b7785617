import NATCore

// One TCP connection through a translator, driven packet by packet: the three-way handshake,
// then payload from either side. The driver keeps both endpoints' sequence numbers and
// acknowledges what each side has really received after translation, so a helper that
// rewrites bytes (and makes the core shift sequence numbers) is tested the way a real peer
// would meet it. Every packet is crafted by `PacketBuilder` with reference checksums.

/// A TCP connection between an inside and an outside endpoint through `translator`.
public struct TCPStreamDriver {
    public let translator: NATTranslator
    public let inside: Endpoint
    public let outside: Endpoint
    /// The translator's external address (what the outside endpoint talks to).
    public let externalAddress: IPv4Bytes
    /// The port the inside endpoint appears as outside: learned from the translated SYN when
    /// the inside endpoint opened the connection, given (a port forward) otherwise.
    public private(set) var externalPort: UInt16
    /// The side that opened the connection: the helper's "client".
    public let client: NATSide
    /// The time packets are sent at; move it forward to test timeouts.
    public var now: NATTime

    private var insideNextSequence: UInt32
    private var outsideNextSequence: UInt32
    private var insideReceived: ReceivedStream?
    private var outsideReceived: ReceivedStream?

    /// `PSH | ACK`: how payload is sent unless told otherwise.
    public static let dataFlags = TCPFlag.ack | TCPFlag.psh

    private init(translator: NATTranslator, inside: Endpoint, outside: Endpoint, externalAddress: IPv4Bytes,
                 externalPort: UInt16, client: NATSide, insideISN: UInt32, outsideISN: UInt32, now: NATTime) {
        self.translator = translator
        self.inside = inside
        self.outside = outside
        self.externalAddress = externalAddress
        self.externalPort = externalPort
        self.client = client
        self.now = now
        insideNextSequence = insideISN
        outsideNextSequence = outsideISN
    }

    /// Opens a connection from the inside endpoint `client` to the outside `server`: SYN,
    /// SYN-ACK, ACK, each of which must be translated. The client's first payload byte is
    /// `clientISN + 1`, the server's `serverISN + 1`.
    public static func openFromInside(
        through translator: NATTranslator, client: Endpoint, server: Endpoint, externalAddress: IPv4Bytes = TestNet.external,
        clientISN: UInt32 = 1000, serverISN: UInt32 = 500_000, now: NATTime = TestNet.start
    ) throws(DriverFailure) -> TCPStreamDriver {
        var driver = TCPStreamDriver(translator: translator, inside: client, outside: server, externalAddress: externalAddress,
                                     externalPort: 0, client: .inside, insideISN: clientISN, outsideISN: serverISN, now: now)
        let syn = driver.send([], from: .inside, flags: TCPFlag.syn)
        guard syn.isDelivered else { throw DriverFailure("SYN from \(client) to \(server): \(syn.verdict)", packet: syn) }
        driver.externalPort = PacketReader.sourcePort(syn.packet)
        try driver.finishHandshake(server: .outside)
        return driver
    }

    /// Opens a connection from the outside endpoint `client` to the inside `server`, which the
    /// translator reaches through `externalPort` (a port forward, or a helper's expectation):
    /// SYN (which must arrive at `server`), SYN-ACK, ACK.
    public static func openFromOutside(
        through translator: NATTranslator, client: Endpoint, externalPort: UInt16, server: Endpoint,
        externalAddress: IPv4Bytes = TestNet.external,
        clientISN: UInt32 = 500_000, serverISN: UInt32 = 1000, now: NATTime = TestNet.start
    ) throws(DriverFailure) -> TCPStreamDriver {
        var driver = TCPStreamDriver(translator: translator, inside: server, outside: client, externalAddress: externalAddress,
                                     externalPort: externalPort, client: .outside, insideISN: serverISN, outsideISN: clientISN, now: now)
        let syn = driver.send([], from: .outside, flags: TCPFlag.syn)
        guard syn.isDelivered, syn.destination == server else {
            throw DriverFailure("SYN from \(client) to \(externalAddress):\(externalPort) should reach \(server): \(syn.verdict), to \(syn.destination)", packet: syn)
        }
        try driver.finishHandshake(server: .inside)
        return driver
    }

    private mutating func finishHandshake(server: NATSide) throws(DriverFailure) {
        let synAck = send([], from: server, flags: TCPFlag.syn | TCPFlag.ack)
        guard synAck.isDelivered else { throw DriverFailure("SYN-ACK from the \(server) side: \(synAck.verdict)", packet: synAck) }
        let ack = send([], from: client, flags: TCPFlag.ack)
        guard ack.isDelivered else { throw DriverFailure("ACK from the \(client) side: \(ack.verdict)", packet: ack) }
    }

    // MARK: sending

    /// Sends `payload` from `side` with that side's next sequence number and an acknowledgement
    /// of everything it has received; the sequence number moves on by the payload (and SYN,
    /// FIN), whatever the verdict, as a real sender's would. Returns what the translator let out.
    @discardableResult
    public mutating func send(_ payload: [UInt8], from side: NATSide, flags: UInt8 = dataFlags, options: [UInt8] = []) -> TranslatedPacket {
        let seq = nextSequence(from: side)
        let ack = flags & TCPFlag.ack != 0 ? acknowledgement(from: side) : 0
        let sent = send(payload, from: side, seq: seq, ack: ack, flags: flags, options: options)
        let consumed = UInt32(payload.count) + (flags & TCPFlag.syn != 0 ? 1 : 0) + (flags & TCPFlag.fin != 0 ? 1 : 0)
        switch side {
        case .inside: insideNextSequence = seq &+ consumed
        case .outside: outsideNextSequence = seq &+ consumed
        }
        return sent
    }

    /// `text` as UTF-8, as `send(_:from:flags:options:)`.
    @discardableResult
    public mutating func send(_ text: String, from side: NATSide, flags: UInt8 = dataFlags) -> TranslatedPacket {
        send(Array(text.utf8), from: side, flags: flags)
    }

    /// Sends a segment with exactly these numbers (a retransmission, a stale ACK, a crafted
    /// SACK): the sender's next sequence number does not move; what is delivered is received.
    @discardableResult
    public mutating func send(_ payload: [UInt8], from side: NATSide, seq: UInt32, ack: UInt32,
                              flags: UInt8 = dataFlags, options: [UInt8] = []) -> TranslatedPacket {
        let sent: TranslatedPacket
        switch side {
        case .inside:
            sent = translator.translate(PacketBuilder.tcp(inside.address, inside.port, outside.address, outside.port, flags: flags,
                                                          seq: seq, ack: ack, options: options, payload: payload),
                                        direction: .outbound, now: now)
        case .outside:
            sent = translator.translate(PacketBuilder.tcp(outside.address, outside.port, externalAddress, externalPort, flags: flags,
                                                          seq: seq, ack: ack, options: options, payload: payload),
                                        direction: .inbound, now: now)
        }
        if sent.isDelivered { receive(sent, by: side == .inside ? .outside : .inside) }
        return sent
    }

    // MARK: state

    /// The sequence number `side` sends next, in its own numbering.
    public func nextSequence(from side: NATSide) -> UInt32 {
        side == .inside ? insideNextSequence : outsideNextSequence
    }

    /// What `side` acknowledges: the end of what it received in order, in the numbering it
    /// sees (after translation); 0 before its peer's SYN arrived.
    public func acknowledgement(from side: NATSide) -> UInt32 {
        (side == .inside ? insideReceived : outsideReceived)?.next ?? 0
    }

    /// The payload bytes `side` has received, in order, from the start of the connection
    /// (retransmitted bytes once; bytes beyond a gap are not included).
    public func received(by side: NATSide) -> [UInt8] {
        (side == .inside ? insideReceived : outsideReceived)?.bytes ?? []
    }

    /// `received(by:)` as UTF-8 text.
    public func receivedText(by side: NATSide) -> String {
        String(decoding: received(by: side), as: UTF8.self)
    }

    /// The segment `side` should see from its peer: the addresses as translated, these
    /// numbers and payload, `PacketBuilder`'s defaults otherwise. Compare a delivered packet
    /// with it byte for byte.
    public func expectedSegment(_ payload: [UInt8], to side: NATSide, seq: UInt32, ack: UInt32,
                                flags: UInt8 = dataFlags, options: [UInt8] = []) -> [UInt8] {
        switch side {
        case .outside:
            PacketBuilder.tcp(externalAddress, externalPort, outside.address, outside.port, flags: flags, seq: seq, ack: ack,
                              options: options, payload: payload)
        case .inside:
            PacketBuilder.tcp(outside.address, outside.port, inside.address, inside.port, flags: flags, seq: seq, ack: ack,
                              options: options, payload: payload)
        }
    }

    private mutating func receive(_ segment: TranslatedPacket, by side: NATSide) {
        var stream = (side == .inside ? insideReceived : outsideReceived)
        let flags = PacketReader.flags(segment.packet)
        if flags & TCPFlag.syn != 0 {
            stream = ReceivedStream(next: segment.seq &+ 1)
        }
        if var known = stream {
            known.take(segment.payload, at: flags & TCPFlag.syn != 0 ? segment.seq &+ 1 : segment.seq, fin: flags & TCPFlag.fin != 0)
            stream = known
        }
        if side == .inside { insideReceived = stream } else { outsideReceived = stream }
    }
}

/// The bytes one side received in order, and the sequence number it expects next.
private struct ReceivedStream {
    var next: UInt32
    var bytes: [UInt8] = []
    var finished = false

    init(next: UInt32) { self.next = next }

    /// Adds what `payload` at `seq` brings beyond `next`; a segment that starts beyond
    /// `next` (a gap) is not taken, as a receiver would not acknowledge it.
    mutating func take(_ payload: [UInt8], at seq: UInt32, fin: Bool) {
        guard !finished else { return }
        let offset = Int32(bitPattern: next &- seq) // bytes of this segment already received
        guard offset >= 0 else { return }
        if Int(offset) < payload.count {
            bytes += payload[Int(offset)...]
            next = seq &+ UInt32(payload.count)
        }
        if fin, Int(offset) <= payload.count {
            next &+= 1
            finished = true
        }
    }
}

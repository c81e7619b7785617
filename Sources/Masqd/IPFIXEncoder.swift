import NATCore

// IPFIX messages (RFC 7011) carrying NAT events with the information elements of RFC 8158:
// NAT44 session create/delete (natEvent 4/5) and NAT44 BIB create/delete (8/9, our
// mappings). Two templates, one per event shape, sent in the first message and again every
// `templateInterval` (UDP has no other way to tell a collector that starts late). Writes
// only — it parses nothing from the network, so it has no place in the fuzz target.
//
// The elements are those nfdump 1.7.1's collector stores (src/netflow/ipfix.c,
// ipfixTranslationMap): the addresses and ports, the protocol, natEvent, the post-NAT source
// address and port, observationTimeMilliseconds; sessions also carry the post-NAT
// destination (unchanged: masqd translates sources only). ICMP echo puts its identifiers in
// the port fields, as nfdump reads them.
//
// Address-only rows (ESP, GRE without keys, SCTP, …) and redirected connections are NAT44
// sessions too (natEvent 4/5, the session template): an address-only record has its protocol
// and every port 0; a redirect's source is not translated (its post-NAT source is the
// client's) and its post-NAT destination is where it was delivered, the router's own address
// and LOCALPORT (postNATDestinationIPv4Address, postNAPTDestinationTransportPort).
//
// Port blocks (--port-block-size) have a third template: RFC 8158's port block allocation
// and de-allocation (natEvent 16/17 in IANA's natEvent registry) with portRangeStart/End,
// portRangeStepSize (1) and portRangeNumPorts; no protocol and no pre-NAT port.

struct IPFIXEncoder {
    /// An information element of a template: its IANA number and the length we send.
    struct Field: Equatable {
        var id: UInt16
        var length: UInt16

        // The information elements we send (IANA's names), each with the length we send it in.
        static let observationTimeMilliseconds = Field(id: 323, length: 8)
        static let natEvent = Field(id: 230, length: 1)
        static let protocolIdentifier = Field(id: 4, length: 1)
        static let sourceIPv4Address = Field(id: 8, length: 4)
        static let sourceTransportPort = Field(id: 7, length: 2)
        static let postNATSourceIPv4Address = Field(id: 225, length: 4)
        static let postNAPTSourceTransportPort = Field(id: 227, length: 2)
        static let destinationIPv4Address = Field(id: 12, length: 4)
        static let destinationTransportPort = Field(id: 11, length: 2)
        static let postNATDestinationIPv4Address = Field(id: 226, length: 4)
        static let postNAPTDestinationTransportPort = Field(id: 228, length: 2)
        static let portRangeStart = Field(id: 361, length: 2)
        static let portRangeEnd = Field(id: 362, length: 2)
        static let portRangeStepSize = Field(id: 363, length: 2)
        static let portRangeNumPorts = Field(id: 364, length: 2)
    }

    static let version: UInt16 = 10
    static let templateSetID: UInt16 = 2
    static let sessionTemplateID: UInt16 = 256
    static let mappingTemplateID: UInt16 = 257
    static let blockTemplateID: UInt16 = 258
    static let headerBytes = 16
    static let setHeaderBytes = 4
    /// Messages stay below a 1500-byte path MTU with IPv4 and UDP headers: no fragments.
    static let maxMessageBytes = 1400

    static let mappingFields: [Field] = [
        .observationTimeMilliseconds, .natEvent, .protocolIdentifier,
        .sourceIPv4Address, .sourceTransportPort, .postNATSourceIPv4Address, .postNAPTSourceTransportPort,
    ]
    static let sessionFields: [Field] = mappingFields + [
        .destinationIPv4Address, .destinationTransportPort, .postNATDestinationIPv4Address, .postNAPTDestinationTransportPort,
    ]
    static let blockFields: [Field] = [
        .observationTimeMilliseconds, .natEvent, .sourceIPv4Address, .postNATSourceIPv4Address,
        .portRangeStart, .portRangeEnd, .portRangeStepSize, .portRangeNumPorts,
    ]
    static let mappingRecordBytes = mappingFields.reduce(0) { $0 + Int($1.length) } // 22
    static let blockRecordBytes = blockFields.reduce(0) { $0 + Int($1.length) } // 25
    static let sessionRecordBytes = sessionFields.reduce(0) { $0 + Int($1.length) } // 34

    /// RFC 8158's natEvent for a NAT event.
    static func natEvent(_ kind: NATEventKind) -> UInt8 {
        switch kind {
        case .sessionCreated, .addressOnlyCreated, .redirectCreated: 4
        case .sessionRemoved, .addressOnlyRemoved, .redirectRemoved: 5
        case .mappingCreated: 8
        case .mappingRemoved: 9
        case .portBlockAllocated: 16
        case .portBlockReleased: 17
        case .sessionEstablished: 0 // no RFC 8158 event; AuditExporter never passes one here
        case .helperStateChanged: 0 // HA only; AuditExporter never passes one here
        }
    }

    let domainID: UInt32
    /// Data records sent before the next message (RFC 7011 §3.1: templates do not count), mod 2^32.
    private(set) var sequenceNumber: UInt32 = 0

    init(domainID: UInt32) { self.domainID = domainID }

    /// One event and its wall-clock time in milliseconds since 1970.
    struct Record {
        var event: NATEvent
        var milliseconds: UInt64
    }

    struct Message {
        var bytes: [UInt8]
        /// Data records in it.
        var records: Int
    }

    /// The messages for `records`, in order: the template set first when `templates` is set
    /// (alone when there are no records). Each message holds as many records as fit.
    mutating func messages(_ records: some Collection<Record>, exportTime: UInt32, templates: Bool) -> [Message] {
        var messages: [Message] = []
        var message: [UInt8] = []
        var recordsInMessage: UInt32 = 0
        var openSet: (start: Int, id: UInt16)? = nil

        func closeSet() {
            guard let set = openSet else { return }
            Self.put16(UInt16(message.count - set.start), at: set.start + 2, in: &message)
            openSet = nil
        }
        func finish() {
            closeSet()
            Self.put16(UInt16(message.count), at: 2, in: &message)
            messages.append(Message(bytes: message, records: Int(recordsInMessage)))
            sequenceNumber &+= recordsInMessage
            message = []
            recordsInMessage = 0
        }
        func begin() {
            message.reserveCapacity(Self.maxMessageBytes)
            Self.append16(Self.version, to: &message)
            Self.append16(0, to: &message) // length, at finish
            Self.append32(exportTime, to: &message)
            Self.append32(sequenceNumber, to: &message)
            Self.append32(domainID, to: &message)
        }

        begin()
        if templates { Self.appendTemplateSet(to: &message) }
        for record in records {
            let kind = record.event.kind
            let id = kind.hasRemote ? Self.sessionTemplateID : kind.isPortBlock ? Self.blockTemplateID : Self.mappingTemplateID
            let size = id == Self.sessionTemplateID ? Self.sessionRecordBytes : id == Self.blockTemplateID ? Self.blockRecordBytes : Self.mappingRecordBytes
            let needed = size + (openSet?.id == id ? 0 : Self.setHeaderBytes)
            if message.count + needed > Self.maxMessageBytes {
                finish()
                begin()
            }
            if openSet?.id != id {
                closeSet()
                openSet = (message.count, id)
                Self.append16(id, to: &message)
                Self.append16(0, to: &message) // length, at closeSet
            }
            if id == Self.blockTemplateID {
                Self.appendBlockRecord(record, to: &message)
            } else {
                Self.appendRecord(record, session: id == Self.sessionTemplateID, to: &message)
            }
            recordsInMessage += 1
        }
        if recordsInMessage > 0 || templates { finish() }
        return messages
    }

    static func appendTemplateSet(to message: inout [UInt8]) {
        let start = message.count
        append16(templateSetID, to: &message)
        append16(0, to: &message)
        for (id, fields) in [(sessionTemplateID, sessionFields), (mappingTemplateID, mappingFields), (blockTemplateID, blockFields)] {
            append16(id, to: &message)
            append16(UInt16(fields.count), to: &message)
            for field in fields {
                append16(field.id, to: &message)
                append16(field.length, to: &message)
            }
        }
        put16(UInt16(message.count - start), at: start + 2, in: &message)
    }

    static func appendRecord(_ record: Record, session: Bool, to message: inout [UInt8]) {
        let event = record.event
        // A redirect translates the destination, everything else the source.
        let redirect = event.kind.isRedirect
        append64(record.milliseconds, to: &message)
        message.append(natEvent(event.kind))
        message.append(event.protocolNumber)
        append32(event.internalAddress, to: &message)
        append16(event.internalPort, to: &message)
        append32(redirect ? event.internalAddress : event.externalAddress, to: &message)
        append16(redirect ? event.internalPort : event.externalPort, to: &message)
        guard session else { return }
        append32(event.remoteAddress, to: &message)
        append16(event.remotePort, to: &message)
        append32(redirect ? event.externalAddress : event.remoteAddress, to: &message)
        append16(redirect ? event.externalPort : event.remotePort, to: &message)
    }

    static func appendBlockRecord(_ record: Record, to message: inout [UInt8]) {
        let event = record.event, ports = event.blockPorts
        append64(record.milliseconds, to: &message)
        message.append(natEvent(event.kind))
        append32(event.internalAddress, to: &message)
        append32(event.externalAddress, to: &message)
        append16(ports.lowerBound, to: &message)
        append16(ports.upperBound, to: &message)
        append16(1, to: &message)
        append16(UInt16(truncatingIfNeeded: ports.count), to: &message)
    }

    // Network byte order.
    static func append16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xff))
    }

    static func append32(_ value: UInt32, to bytes: inout [UInt8]) {
        append16(UInt16(value >> 16), to: &bytes)
        append16(UInt16(value & 0xffff), to: &bytes)
    }

    static func append64(_ value: UInt64, to bytes: inout [UInt8]) {
        append32(UInt32(value >> 32), to: &bytes)
        append32(UInt32(value & 0xffff_ffff), to: &bytes)
    }

    static func put16(_ value: UInt16, at offset: Int, in bytes: inout [UInt8]) {
        bytes[offset] = UInt8(value >> 8)
        bytes[offset + 1] = UInt8(value & 0xff)
    }
}

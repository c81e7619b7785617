// One packet as a capture file holds it.

public struct CapturedPacket: Sendable, Equatable {
    /// When it was captured, in nanoseconds since 1970; nil for a pcapng Simple Packet Block,
    /// which has no timestamp.
    public var timestampNanoseconds: UInt64?
    /// How its bytes begin (Ethernet, Linux cooked, raw IP, …).
    public var linkType: LinkType
    /// pcapng: the Interface Description Block it refers to, counted from 0 within its
    /// section. Classic pcap: 0.
    public var interfaceIndex: Int
    /// pcapng: the interface's if_name option, if it has one. Classic pcap: nil.
    public var interfaceName: String?
    /// pcapng: the section it is in, counted from 0. Classic pcap: 0.
    public var section: Int
    /// The captured bytes: a slice of the file's bytes (same indices), never a copy.
    public var data: ArraySlice<UInt8>
    /// The packet's length on the wire (more than `data.count` when the capture cut it short).
    public var originalLength: UInt32
    /// Where its record or block starts in the file.
    public var fileOffset: Int

    public init(timestampNanoseconds: UInt64?, linkType: LinkType, interfaceIndex: Int = 0, interfaceName: String? = nil,
                section: Int = 0, data: ArraySlice<UInt8>, originalLength: UInt32, fileOffset: Int) {
        self.timestampNanoseconds = timestampNanoseconds
        self.linkType = linkType
        self.interfaceIndex = interfaceIndex
        self.interfaceName = interfaceName
        self.section = section
        self.data = data
        self.originalLength = originalLength
        self.fileOffset = fileOffset
    }

    /// True when the capture holds fewer bytes than the packet had.
    public var isCutShort: Bool { UInt32(clamping: data.count) < originalLength }
}

/// A pcapng interface, as its Interface Description Block describes it.
public struct CaptureInterface: Sendable, Equatable {
    public var linkType: LinkType
    /// 0: no limit given.
    public var snapLength: UInt32
    public var name: String?
    public var timestampResolution: TimestampResolution

    public init(linkType: LinkType, snapLength: UInt32, name: String?, timestampResolution: TimestampResolution) {
        self.linkType = linkType
        self.snapLength = snapLength
        self.name = name
        self.timestampResolution = timestampResolution
    }
}

// The PPTP helper (RFC 2637; the kernel's nf_conntrack_pptp + nf_nat_pptp are the anchor):
// on the control connection (TCP 1723) of a LAN host calling a PPTP server outside, the
// host's call IDs are replaced by NAT call IDs unique for that server, and the server's
// answers get the host's own back, so two LAN hosts can run PPTP to one server at once.
// The core translates the enhanced GRE of each call by those IDs (NATCore/GRECallTable.swift).
//
//   from the host (PNS):   Outgoing-Call-Request (7)  Call ID → NAT call ID (a new call)
//                          Incoming-Call-Reply (10)   Call ID → NAT call ID (a new call, the
//                                                     server's Call ID known at once)
//                          Call-Clear-Request (12)    Call ID → NAT call ID
//   from the server (PAC): Outgoing-Call-Reply (8)    Peer's Call ID → host's (the call's GRE
//                                                     may flow: the server's Call ID is known)
//                          Incoming-Call-Connected (11), WAN-Error-Notify (14)
//                                                     Peer's Call ID → host's
//
// Every control message starts with its length, type 1 and the magic cookie 0x1A2B3C4D; a
// stream that breaks that is not PPTP and is abandoned (counted once). A message cut across
// segments is held until whole (they are at most 220 bytes). A PPTP server inside, behind a
// port forward, is not translated (the kernel's helper does not either for the PAC side).

import NATCore

public final class PPTPHelper: ApplicationHelper {
    public let name = "pptp"
    static let magic: UInt32 = 0x1a2b_3c4d
    /// Incoming-Call-Request is the longest message RFC 2637 defines (220 bytes).
    static let maxMessageLength = 220
    static let minimumMessageLength = 12

    public init() {}

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        guard context.clientIsInternal, context.state[0] == 0 else { return .pass }
        let bytes = data.bytes
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 2 else { return .holdFrom(offset) }
            let length = Int(Self.be16(bytes, offset))
            guard (Self.minimumMessageLength...Self.maxMessageLength).contains(length) else { return abandon(&context) }
            guard bytes.count - offset >= length else { return .holdFrom(offset) }
            guard Self.be16(bytes, offset + 2) == 1, Self.be32(bytes, offset + 4) == Self.magic else { return abandon(&context) }
            let type = Self.be16(bytes, offset + 8)
            // A message that needs an edit when the core's edit room is spent: shown again later.
            if Self.rewrites(type, fromClient: data.direction == .fromClient), context.editsRemaining == 0 {
                return .holdFrom(offset)
            }
            if length >= 16 { rewrite(type, bytes, at: offset, data.direction == .fromClient, &context) }
            offset += length
        }
        return .pass
    }

    static func rewrites(_ type: UInt16, fromClient: Bool) -> Bool {
        fromClient ? [7, 10, 12].contains(type) : [8, 11, 14].contains(type)
    }

    private func rewrite(_ type: UInt16, _ bytes: UnsafeRawBufferPointer, at offset: Int, _ fromClient: Bool,
                         _ context: inout HelperContext) {
        let callID = Self.be16(bytes, offset + 12)
        let peerCallID = Self.be16(bytes, offset + 14)
        let replacement: UInt16?
        switch (fromClient, type) {
        case (true, 7): replacement = context.expectGRECall(callID: callID)
        case (true, 10):
            replacement = context.expectGRECall(callID: callID)
            if let nat = replacement { _ = context.confirmGRECall(natCallID: nat, remoteCallID: peerCallID) }
        case (true, 12): replacement = context.natGRECallID(callID: callID)
        case (false, 8):
            // Call ID (the server's) at 12, Peer's Call ID (ours) at 14.
            guard let host = context.confirmGRECall(natCallID: peerCallID, remoteCallID: callID) else {
                context.count(.malformed)
                return
            }
            edit(offset + 14, from: peerCallID, to: host, &context)
            return
        case (false, 11), (false, 14): replacement = context.internalGRECallID(natCallID: callID)
        default: return
        }
        guard let replacement else {
            // No room for a new call (`expectGRECall` counted `.limit`), or a message about a
            // call this connection never set up.
            if type != 7, type != 10 { context.count(.malformed) }
            return
        }
        edit(offset + 12, from: callID, to: replacement, &context)
    }

    /// An ID that stays the same (the NAT kept the host's) costs no edit.
    private func edit(_ at: Int, from old: UInt16, to value: UInt16, _ context: inout HelperContext) {
        guard value != old else { return }
        if context.replace(at..<(at + 2), { $0.write(byte: UInt8(value >> 8)); $0.write(byte: UInt8(value & 0xff)) }) {
            context.count(.rewrite)
        } else {
            context.count(.limit)
        }
    }

    private func abandon(_ context: inout HelperContext) -> HelperVerdict {
        context.state[0] = 1
        context.count(.abandoned)
        return .pass
    }

    static func be16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
    static func be32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { UInt32(be16(b, at)) << 16 | UInt32(be16(b, at + 2)) }
}

// What a session's packets say about the internal endpoint's TCP receive window, so a blind
// RST or FIN from the WAN cannot end the session (issue #20 item 2). Modelled on conntrack's
// tcp_in_window and its RST rule (nf_conntrack_proto_tcp.c), reduced to what the threat needs:
// only the remote endpoint's packets can be forged from outside, so only they are judged, and
// only against what the internal endpoint's own packets announced (its highest ACK, its
// window, the scale agreed in the SYNs).
//
// - An RST from the remote changes state if its sequence number is the one the internal host
//   expects next (its highest ACK), or the end of the remote's last in-window segment (an
//   RST right behind data, before the ACK: conntrack's "RST train"). One elsewhere inside the
//   window leaves an established session as it is (RFC 5961: the host answers with a
//   challenge ACK, and the real peer's next RST is exact). One outside the window, or one
//   answering the internal SYN whose ACK is not that SYN's, changes nothing.
// - A FIN from the remote changes state if its sequence number (after the payload) is in the
//   window.
// - The window: the internal host's last advertised window, shifted by the scale both SYNs
//   agreed (RFC 7323). A session picked up mid-stream (or restored from a state file) never
//   saw the SYNs: 65535, the largest window without scaling — a larger real window only means
//   a far FIN is not believed and the session stays in a longer timeout.
// - A restored session knows nothing until the internal endpoint speaks again; until then a
//   remote RST or FIN changes nothing (the window is relearned, not saved: an idle session
//   must not be open to a blind reset just because masqd restarted).
//
// Ignored packets are still translated and forwarded: the host's own TCP checks the window
// too, so forwarding is harmless to it, and dropping on masqd's estimate could strand a
// connection the host would have closed. They only do not touch the session (state, timer).

struct TCPWindowTracking: BitwiseCopyable {
    /// The internal endpoint's highest ACK; before it acknowledged anything, its SYN's sequence
    /// number + 1 (what an RST answering that SYN must acknowledge).
    var internalAcknowledged: UInt32 = 0
    /// Sequence number after the remote's last in-window segment.
    var remoteEnd: UInt32 = 0
    /// The internal endpoint's last advertised window field (unscaled), from the packet that
    /// carried `internalAcknowledged`.
    var internalWindow: UInt16 = 0
    /// The window scale the internal endpoint offered in its SYN (0-14).
    var internalScale: UInt8 = 0
    var flags: UInt8 = 0

    static let internalAckKnown: UInt8 = 1
    static let internalSYNSeen: UInt8 = 2
    static let remoteSYNSeen: UInt8 = 4
    static let remoteEndKnown: UInt8 = 8
    static let internalOfferedScale: UInt8 = 16
    static let remoteOfferedScale: UInt8 = 32
    /// Restored from a state file: nothing known until the internal endpoint's next packet.
    static let restored: UInt8 = 64
    /// `internalWindow` came from a SYN, whose window is never scaled.
    static let windowFromSYN: UInt8 = 128

    /// The window when the scale is unknown: the largest one without scaling.
    static let unscaledMaximum: UInt32 = 65535

    /// What a remote packet may do to its session.
    enum Judgement: Equatable {
        case accept
        /// An RST or FIN outside the window (or, for a restored session, not yet checkable).
        case outOfWindow
        /// An RST inside the window but not at the expected sequence number: challenge-ACK case.
        case inexactReset
    }

    /// The internal endpoint's receive window, in bytes.
    @inline(__always)
    var window: UInt32 {
        if flags & Self.windowFromSYN != 0 { return UInt32(internalWindow) }
        let bothSYNs = Self.internalSYNSeen | Self.remoteSYNSeen
        guard flags & bothSYNs == bothSYNs else { return Self.unscaledMaximum }
        let bothOffered = Self.internalOfferedScale | Self.remoteOfferedScale
        let shift = flags & bothOffered == bothOffered ? UInt32(internalScale) : 0
        return UInt32(internalWindow) << shift
    }

    /// Learns from a packet of the internal endpoint (trusted: it cannot be forged from the WAN).
    @inline(__always)
    mutating func learnInternal(_ tcp: TCPHeader, flags packetFlags: TCPFlags, scaleOffer: UInt8?) {
        flags &= ~Self.restored
        if packetFlags.contains(.syn) {
            flags |= Self.internalSYNSeen
            if let scaleOffer { flags |= Self.internalOfferedScale; internalScale = scaleOffer } else { flags &= ~Self.internalOfferedScale }
            if !packetFlags.contains(.ack) {
                // A (new) connection from inside: what an answering RST must acknowledge.
                flags &= ~(Self.internalAckKnown | Self.remoteEndKnown | Self.remoteSYNSeen | Self.remoteOfferedScale)
                internalAcknowledged = tcp.sequenceNumber &+ 1
                internalWindow = tcp.window
                flags |= Self.windowFromSYN
                return
            }
        }
        guard packetFlags.contains(.ack) else { return }
        let ack = tcp.acknowledgementNumber
        // The highest ACK wins; a reordered older one does not move it back.
        if flags & Self.internalAckKnown == 0 || Int32(bitPattern: ack &- internalAcknowledged) >= 0 {
            internalAcknowledged = ack
            internalWindow = tcp.window
            if packetFlags.contains(.syn) { flags |= Self.windowFromSYN } else { flags &= ~Self.windowFromSYN }
        }
        flags |= Self.internalAckKnown
    }

    /// Judges a packet of the remote endpoint and learns from it if it is in the window.
    @inline(__always)
    mutating func judgeRemote(_ tcp: TCPHeader, flags packetFlags: TCPFlags, payloadLength: Int, scaleOffer: UInt8?,
                              established: Bool) -> Judgement {
        let seq = tcp.sequenceNumber
        if packetFlags.contains(.syn) {
            flags |= Self.remoteSYNSeen
            if scaleOffer != nil { flags |= Self.remoteOfferedScale } else { flags &= ~Self.remoteOfferedScale }
        }
        guard flags & Self.internalAckKnown != 0 else {
            if packetFlags.contains(.rst), flags & Self.internalSYNSeen != 0 {
                // Answering the internal SYN (connection refused): RFC 793 wants its ACK to be SYN + 1.
                return packetFlags.contains(.ack) && tcp.acknowledgementNumber == internalAcknowledged ? .accept : .outOfWindow
            }
            if packetFlags.contains(.rst) || packetFlags.contains(.fin) {
                // Nothing to check against: only a restored session, which has carried traffic, refuses.
                return flags & Self.restored != 0 ? .outOfWindow : .accept
            }
            return .accept
        }
        let window = self.window
        let offset = seq &- internalAcknowledged
        if packetFlags.contains(.rst) {
            guard offset <= window else { return .outOfWindow }
            if offset == 0 || !established || (flags & Self.remoteEndKnown != 0 && seq == remoteEnd) { return .accept }
            return .inexactReset
        }
        let consumed = UInt32(truncatingIfNeeded: payloadLength) &+ (packetFlags.contains(.syn) ? 1 : 0)
        let end = seq &+ consumed
        // In the window, or a retransmission of up to a window below it.
        let inWindow = offset <= window || internalAcknowledged &- seq <= window
        let finEnd = end &+ (packetFlags.contains(.fin) ? 1 : 0)
        // The FIN's own number is `end`: new (at or after the ACK) or just acknowledged (a retransmission).
        if packetFlags.contains(.fin), finEnd &- internalAcknowledged > window &+ 1 { return .outOfWindow }
        if inWindow {
            if flags & Self.remoteEndKnown == 0 || Int32(bitPattern: finEnd &- remoteEnd) > 0 { remoteEnd = finEnd }
            flags |= Self.remoteEndKnown
        }
        return .accept
    }

    /// The window scale option of a SYN (RFC 7323: kind 3, length 3, shift capped at 14), or
    /// nil. Read only for SYNs, which are rare; `dataOffset` was checked against the packet.
    static func scaleOffer(_ tcp: TCPHeader) -> UInt8? {
        let end = tcp.dataOffset
        var i = TCPHeader.minimumLength
        while i < end {
            let kind = tcp.bytes.loadBE8(at: i)
            if kind == 0 { return nil } // end of options
            if kind == 1 { i += 1; continue } // NOP
            guard i + 1 < end else { return nil }
            let length = Int(tcp.bytes.loadBE8(at: i + 1))
            guard length >= 2, i + length <= end else { return nil } // malformed: no scaling
            if kind == 3, length == 3 { return min(tcp.bytes.loadBE8(at: i + 2), 14) }
            i += length
        }
        return nil
    }
}

import NATCore

// One IPv4 packet through the engine: a fragment goes to the reassembler (and its datagram,
// once whole, to the translator), anything else straight to the translator. What comes out
// says which packet gets which bytes. The queue worker turns it into verdicts and `masqd
// replay` into records of a capture, so both make exactly the same decisions.

/// What to do with a packet, and with which bytes.
enum PacketDisposition {
    /// Pass this packet on: unchanged, or with its bytes rewritten in place.
    case accept(rewritten: Bool)
    /// Send `bytes` in place of the packet `token` names: a helper's replacement (the token is
    /// the packet's own) or a reassembled datagram (the token of its offset-0 fragment). The
    /// bytes belong to the translator or reassembler and stay valid until their next call.
    case send(UnsafeRawBufferPointer, token: UInt32)
    /// A fragment, held until its datagram is whole: no verdict yet.
    case held
    /// Drop the packet `token` names (the offered one, or a reassembled datagram's first fragment).
    case drop(token: UInt32, PacketDropCause)
}

/// Why a packet was dropped: the translator's reason or the reassembler's.
enum PacketDropCause: Sendable, Equatable {
    case translator(DropReason)
    case fragment(FragmentDropReason)
}

enum PacketPath {
    /// Translates (or holds) one IPv4 packet. `token` names it to the reassembler; tokens of
    /// held fragments that must be dropped now are passed to `dropHeld` before this returns
    /// (see `FragmentOutcome`). Allocation-free, no existential calls: the worker's hot path.
    @inline(__always)
    static func process(
        _ packet: UnsafeMutableRawBufferPointer, token: UInt32, direction: PacketDirection, checksum: PacketChecksumState,
        now: NATTime, translator: NATTranslator, reassembler: FragmentReassembler, inputInterface: UInt32 = 0,
        dropHeld: (UInt32) -> Void
    ) -> PacketDisposition {
        if FragmentReassembler.isFragment(UnsafeRawBufferPointer(packet)) {
            return processFragment(packet, token: token, direction: direction, now: now,
                                   translator: translator, reassembler: reassembler, inputInterface: inputInterface, dropHeld: dropHeld)
        }
        // `inputInterface` (0: unknown) names the router's address a redirected packet goes to.
        switch translator.translate(packet, direction: direction, checksum: checksum, now: now, inputInterface: inputInterface) {
        case .accept: return .accept(rewritten: false)
        case .acceptRewritten: return .accept(rewritten: true)
        case .acceptReplaced(let bytes): return .send(UnsafeRawBufferPointer(bytes), token: token)
        case .drop(let reason): return .drop(token: token, .translator(reason))
        }
    }

    /// Fragments are held until their datagram is whole; then the datagram is translated and
    /// travels as the payload of its first fragment's verdict, every other fragment is
    /// dropped, and the kernel refragments on output (KERNEL-FACTS fact 5). The checks that
    /// need only the IP header (a spoofed or martian source from the WAN) come first: a
    /// fragment that fails them never holds reassembly state under the address it claims.
    static func processFragment(
        _ packet: UnsafeMutableRawBufferPointer, token: UInt32, direction: PacketDirection, now: NATTime,
        translator: NATTranslator, reassembler: FragmentReassembler, inputInterface: UInt32 = 0, dropHeld: (UInt32) -> Void
    ) -> PacketDisposition {
        if let reason = translator.screenFragment(packet, direction: direction) { return .drop(token: token, .translator(reason)) }
        switch reassembler.offer(UnsafeRawBufferPointer(packet), token: token, direction: direction, now: now, dropToken: dropHeld) {
        case .held:
            return .held
        case .complete(let datagram, let acceptToken):
            // Always sent with its payload, translated or not: the other fragments are gone.
            switch translator.translate(datagram, direction: direction, checksum: PacketChecksumState(), now: now,
                                        inputInterface: inputInterface) {
            case .accept, .acceptRewritten: return .send(UnsafeRawBufferPointer(datagram), token: acceptToken)
            case .acceptReplaced(let bytes): return .send(UnsafeRawBufferPointer(bytes), token: acceptToken)
            case .drop(let reason): return .drop(token: acceptToken, .translator(reason))
            }
        case .drop(let reason):
            return .drop(token: token, .fragment(reason))
        }
    }
}

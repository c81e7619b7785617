// The helpers' scratch space, allocated once with the translator and reused by every packet
// a helper inspects (NATTranslator-Helpers.swift, -HelperStream.swift, -HelperDatagram.swift).
// Its one owner: not copyable, freed by its deinit.

struct HelperScratch: ~Copyable {
    /// A segment's bytes as the helper inspects them: the held ones, then the new.
    let input: UnsafeMutableRawPointer
    /// A segment's payload with the staged edits applied.
    let payload: UnsafeMutableRawPointer
    /// A whole rewritten packet (a datagram, a resent segment).
    let packet: UnsafeMutableRawPointer
    /// The edits a helper staged during one `inspect`, and their replacement bytes
    /// (`HelperLimits.maxReplacement` each).
    let edits: UnsafeMutablePointer<StagedEdit>
    let replacements: UnsafeMutableRawPointer

    static let maxEdits = max(HelperLimits.editsPerInspect, HelperLimits.editsPerDatagram)
    /// A packet's worth and then some; `input` and `payload` hold the held bytes on top.
    static let bufferBytes = 65536 + 4096

    init(heldBytes: Int) {
        input = .allocate(byteCount: Self.bufferBytes + heldBytes, alignment: 16)
        payload = .allocate(byteCount: Self.bufferBytes + heldBytes, alignment: 16)
        packet = .allocate(byteCount: Self.bufferBytes + heldBytes, alignment: 16)
        edits = .allocate(capacity: Self.maxEdits)
        replacements = .allocate(byteCount: Self.maxEdits * HelperLimits.maxReplacement, alignment: 16)
    }

    deinit {
        input.deallocate()
        payload.deallocate()
        packet.deallocate()
        edits.deallocate()
        replacements.deallocate()
    }

    /// Where staged edit `i`'s replacement bytes are.
    @inline(__always)
    func replacement(_ i: Int) -> UnsafeMutableRawPointer { replacements + i * HelperLimits.maxReplacement }
}

import NATCore
import PacketCapture

// The packet loop of a replay: each captured packet, in capture order, through the same
// PacketPath as the daemon's queue worker, with the capture's time as the clock. Written:
// what the daemon would let through, with its bytes. Reported: every drop and every packet
// left out, one line each.

final class ReplayRun {
    let settings: ReplaySettings
    let packets: [CapturedPacket]
    let report: (String) -> Void
    let translator: NATTranslator
    let reassembler: FragmentReassembler
    var output: ReplayOutput
    var clock = ReplayClock()
    var fragments = ReplayFragments()
    var summary = ReplaySummary()
    /// Each packet's time on the translator's clock (nanoseconds since the first), by index.
    var times: [UInt64] = []
    /// The packet being translated, copied out of the capture: the translator rewrites in place.
    let scratch: UnsafeMutableRawBufferPointer

    init(settings: ReplaySettings, packets: [CapturedPacket], report: @escaping (String) -> Void) {
        self.settings = settings
        self.packets = packets
        self.report = report
        translator = NATTranslator(configuration: settings.nat)
        // The daemon draws its seeds at random; a replay keeps the configuration's fixed one,
        // so the same capture always replays to the same ports.
        reassembler = FragmentReassembler(hashSeed: settings.nat.hashSeed)
        output = ReplayOutput(inputLinkTypes: Set(packets.map(\.linkType)))
        scratch = .allocate(byteCount: CaptureLimits.maximumPacketLength, alignment: 16)
        times.reserveCapacity(packets.count)
    }

    deinit { scratch.deallocate() }

    func replayAll() throws(MasqdError) -> (output: [UInt8], summary: ReplaySummary) {
        for index in packets.indices { try replay(index) }
        // Fragments still waiting when the capture ends never complete.
        reassembler.removeAll { token in
            fragments.release(token)
            drop(Int(token), "fragment_incomplete")
        }
        summary.outputLinkType = output.linkType.rawValue
        for (index, registration) in translator.configuration.helpers.enumerated() {
            for event in HelperEvent.allCases {
                let count = translator.counters.helperEvents(helper: index, event)
                if count > 0 { summary.helperEvents.append(("\(registration.helper.name)_\(event)", count)) }
            }
        }
        return (output.bytes, summary)
    }

    private func replay(_ index: Int) throws(MasqdError) {
        let packet = packets[index]
        summary.read += 1
        let timestamp = clock.absolute(packet.timestampNanoseconds)
        clock.advance(to: packet.timestampNanoseconds, translator: translator)
        times.append(clock.now.nanoseconds)
        reassembler.expire(now: clock.now, budget: Int.max) { token in
            fragments.release(token)
            drop(Int(token), "fragment_timeout")
        }
        switch LinkLayer.locateIPv4(in: packet.data, linkType: packet.linkType) {
        case .ipv4(let headerLength):
            try replayIPv4(index, timestamp: timestamp, headerLength: headerLength)
        case .truncated:
            drop(index, "truncated")
        case .notIPv4, .unsupportedLinkType:
            // Passed, as the daemon passes what is not IPv4; a raw-IP output has no place for it.
            guard output.keepsLinkHeaders else {
                summary.notIPv4LeftOut += 1
                return
            }
            summary.notIPv4Written += 1
            try write(index, timestamp: timestamp, linkHeader: packet.data.prefix(0), bytes: packet.data,
                      cutShortBy: packet.isCutShort ? packet.originalLength - UInt32(packet.data.count) : 0)
        }
    }

    private func replayIPv4(_ index: Int, timestamp: UInt64, headerLength: Int) throws(MasqdError) {
        let packet = packets[index]
        var ip = packet.data[(packet.data.startIndex + headerLength)...]
        if ip.count >= 4, ip[ip.startIndex] >> 4 == 4 {
            let totalLength = Int(ip[ip.startIndex + 2]) << 8 | Int(ip[ip.startIndex + 3])
            // Cut by the snap length: the daemon drops what it cannot see whole, too.
            if totalLength > ip.count, packet.isCutShort {
                drop(index, "truncated")
                return
            }
            // Link-layer padding (or an Ethernet FCS) after the IP packet is not part of it.
            if totalLength >= 20, totalLength < ip.count { ip = ip.prefix(totalLength) }
        }
        scratch.copyBytes(from: ip)
        let buffer = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<ip.count])
        let direction: PacketDirection
        if buffer.count >= 20 {
            let source = IPv4Address(buffer.loadUnaligned(fromByteOffset: 12, as: UInt32.self).bigEndian)
            let destination = IPv4Address(buffer.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian)
            switch settings.directions.decide(source: source, destination: destination, interfaceName: packet.interfaceName) {
            case .notTranslated(let why):
                summary.notTranslated += 1
                report(ReplayReport.notTranslated(index + 1, at: times[index], source: source, destination: destination, why))
                return
            case .translate(let decided):
                direction = decided
                switch decided {
                case .outbound: summary.outbound += 1
                case .inbound: summary.inbound += 1
                case .hairpin: summary.hairpin += 1
                }
            }
        } else {
            // No addresses to go by: the translator drops it as malformed whichever way it goes.
            direction = .inbound
        }
        let token = UInt32(index)
        let isFragment = FragmentReassembler.isFragment(UnsafeRawBufferPointer(buffer))
        var reported: [UInt32] = []
        let disposition = PacketPath.process(
            buffer, token: token, direction: direction, checksum: PacketChecksumState(), now: clock.now,
            translator: translator, reassembler: reassembler) { reported.append($0) }
        if isFragment {
            try settleFragment(index, timestamp: timestamp, key: FragmentKey(buffer), disposition, reported: reported)
            return
        }
        switch disposition {
        case .accept:
            try write(index, timestamp: timestamp, linkHeader: packet.data.prefix(headerLength), bytes: UnsafeRawBufferPointer(buffer))
        case .send(let bytes, _):
            try write(index, timestamp: timestamp, linkHeader: packet.data.prefix(headerLength), bytes: bytes)
        case .drop(_, let cause):
            drop(index, ReplayReport.name(cause))
        case .held:
            break // only fragments are held
        }
    }

    /// A fragment's outcome, and the fate of every held fragment the reassembler let go of.
    private func settleFragment(_ index: Int, timestamp: UInt64, key: FragmentKey, _ disposition: PacketDisposition,
                                reported: [UInt32]) throws(MasqdError) {
        let token = UInt32(index)
        // The tokens given back that were fragments of this packet's datagram; the others were
        // evicted to make room.
        var members: [Int] = []
        for other in reported {
            if other == token || fragments.release(other, datagram: key) == .member {
                if other != token { members.append(Int(other)) }
            } else {
                drop(Int(other), "fragment_evicted")
            }
        }
        switch disposition {
        case .held:
            fragments.hold(token, key: key)
            summary.fragmentsHeld += 1
        case .send(let datagram, let firstFragment):
            // Whole: written now, behind its first fragment's link-layer header.
            fragments.release(firstFragment)
            summary.datagramsReassembled += 1
            try write(index, timestamp: timestamp, linkHeader: linkHeader(Int(firstFragment)), bytes: datagram)
        case .drop(let firstFragment, .translator(let reason)):
            // Whole, then dropped by the translator: every fragment of it is gone.
            fragments.release(firstFragment)
            var dropped = Set(members)
            dropped.insert(Int(firstFragment))
            dropped.insert(index)
            for number in dropped.sorted() { drop(number, "\(reason)") }
        case .drop(_, .fragment(let reason)):
            // Refused; an overlap or a cap throws its whole datagram away with it.
            for number in (members + [index]).sorted() { drop(number, "fragment_\(reason)") }
        case .accept:
            break // fragments are never passed alone
        }
    }

    private func linkHeader(_ index: Int) -> ArraySlice<UInt8> {
        let packet = packets[index]
        guard case .ipv4(let headerLength) = LinkLayer.locateIPv4(in: packet.data, linkType: packet.linkType) else {
            return packet.data.prefix(0)
        }
        return packet.data.prefix(headerLength)
    }

    private func write(_ index: Int, timestamp: UInt64, linkHeader: ArraySlice<UInt8>, bytes: some Collection<UInt8>,
                       cutShortBy: UInt32 = 0) throws(MasqdError) {
        try output.write(packetNumber: index + 1, timestamp: timestamp, linkHeader: linkHeader, packet: bytes, cutShortBy: cutShortBy)
        summary.written += 1
    }

    private func drop(_ index: Int, _ reason: String) {
        summary.countDrop(reason)
        report(ReplayReport.dropped(index + 1, at: index < times.count ? times[index] : 0, reason))
    }
}

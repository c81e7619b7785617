import NATCore
import NetfilterQueue

// What an HA standby does with a packet that reaches its queue: it translates nothing, as
// the active router holds the virtual addresses and translates. Outbound packets are
// dropped: passed, they would leave untranslated (fail-closed, as with no engine); translated,
// they would take ports the active hands out too. An inbound one to the WAN (virtual)
// address is dropped: only the active's state can translate it (a peer's stale ARP entry;
// it retries once the gratuitous ARP has moved the address). Everything else is the router's
// own traffic — VRRP adverts, the sync channel, management — and goes to its stack unchanged.

extension QueueWorker {
    @inline(__always)
    func standbyVerdict(_ packet: QueuedPacket, direction: PacketDirection) {
        let bytes = packet.payload
        let toWANAddress = bytes.count >= 20 && translator.configuration.externalAddress.map {
            (UInt32(bytes[16]) << 24 | UInt32(bytes[17]) << 16 | UInt32(bytes[18]) << 8 | UInt32(bytes[19])) == $0.value
        } == true
        if direction == .outbound || (direction == .inbound && toWANAddress) {
            counters[.standbyDropped] &+= 1
            verdict(packet, .drop, rewritten: false)
        } else {
            counters[.standbyPassed] &+= 1
            verdict(packet, .accept, rewritten: false)
        }
    }
}

import Benchmark
import NATCore

// What NAT events (--audit-log, --ipfix-collector) cost a packet that makes or ends a flow.
// Churn: 250 UDP flows sent 4 times per 1000 iterations, each round 400 s after the last, so
// after the first round every packet finds its old session stale, removes it with its
// mapping and makes both anew — four events a packet with events on (two in the first round). The daemon's part under the lock is included: every 64 packets (a batch)
// the events move to a second ring, as AuditExporter.take does, and are read out. Off and on, side by side.

func natEventBenchmarks() {
    for eventsOn in [false, true] {
        Benchmark("Flow churn (remove + create), NAT events \(eventsOn ? "on" : "off")",
                  configuration: .init(scalingFactor: .kilo, maxIterations: 50)) { benchmark in
            var configuration = NATConfiguration(externalAddress: external)
            configuration.maxSessions = 4096
            configuration.maxMappings = 4096
            configuration.maxSessionsPerHost = Int.max
            let translator = NATTranslator(configuration: configuration)
            var queue = NATEventRing()
            if eventsOn {
                translator.enableEvents(capacity: 65536, now: start)
                queue.allocate(capacity: 65536)
            }
            var packets: [[UInt8]] = []
            for i in 0..<250 {
                packets.append(PacketTemplates.udp(source: IPv4Address(192, 0, 2, UInt8(1 + i % 250)), sourcePort: UInt16(10000 + i),
                                                   destination: server, destinationPort: 53))
            }
            // Translation rewrites in place: each iteration translates a fresh copy of its packet.
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
            defer { scratch.deallocate() }
            var moved = 0
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                let now = NATTime(nanoseconds: start.nanoseconds &+ UInt64(i / packets.count) &* 400_000_000_000)
                let count = packets[i % packets.count].withUnsafeBytes { template in
                    scratch.copyMemory(from: template)
                    return template.count
                }
                blackHole(translator.translate(UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count]), direction: .outbound,
                                               checksum: PacketChecksumState(), now: now))
                if i & 63 == 63 {
                    blackHole(translator.moveEvents(into: &queue))
                    queue.drain { moved &+= Int($0.externalPort) }
                }
            }
            benchmark.stopMeasurement()
            blackHole(moved)
        }
    }
}

import Benchmark
import NATCore
import NATHelpers

// The costs off the fast path: reassembling a fragmented datagram, and an FTP PORT command
// rewritten by the helper (with the server's ACK mapped back).

func fragmentBenchmarks() {
    Benchmark("Reassemble a 4000-byte UDP datagram (3 fragments)", configuration: .init(scalingFactor: .kilo, maxIterations: 200)) { benchmark in
        let reassembler = FragmentReassembler(hashSeed: 7)
        let datagram = PacketTemplates.udp(source: IPv4Address(192, 0, 2, 10), sourcePort: 4000, destination: server,
                                           destinationPort: 9, payload: 3972)
        let pieces = PacketTemplates.fragments(of: datagram, size: 1480)
        var copies = pieces
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            // A new identification per datagram, as a sender would use.
            for p in 0..<copies.count {
                copies[p][4] = UInt8(truncatingIfNeeded: i >> 8)
                copies[p][5] = UInt8(truncatingIfNeeded: i)
                copies[p].withUnsafeBytes { raw in
                    blackHole(reassembler.offer(raw, token: UInt32(p), direction: .outbound, now: start) { blackHole($0) })
                }
            }
        }
        benchmark.stopMeasurement()
    }
}

func ftpBenchmarks() {
    Benchmark("FTP PORT command rewritten (+ the server's ACK mapped)", configuration: .init(scalingFactor: .kilo, maxIterations: 200)) { benchmark in
        var configuration = NATConfiguration(externalAddress: external, internalPrefixes: [IPv4Prefix("192.0.2.0/24")!])
        configuration.maxSessions = 4096
        configuration.maxMappings = 4096
        configuration.helpers = [HelperRegistration(helper: FTPHelper(), ports: [21])]
        configuration.helperLimits.expectations = 4096
        configuration.helperLimits.expectationsPerConnection = 4096
        let translator = NATTranslator(configuration: configuration)
        let client = IPv4Address(192, 0, 2, 10)
        let clientISN: UInt32 = 1000, serverISN: UInt32 = 5000
        var syn = PacketTemplates.tcp(source: client, sourcePort: 40000, destination: server, destinationPort: 21,
                                      sequence: clientISN, acknowledgement: 0, flags: 0x02)
        _ = syn.withUnsafeMutableBytes { translator.translate($0, direction: .outbound, checksum: PacketChecksumState(), now: start) }
        var synAck = PacketTemplates.tcp(source: server, sourcePort: 21, destination: external, destinationPort: 40000,
                                         sequence: serverISN, acknowledgement: clientISN + 1, flags: 0x12)
        _ = synAck.withUnsafeMutableBytes { translator.translate($0, direction: .inbound, checksum: PacketChecksumState(), now: start) }
        // Each command names a new data port (a new mapping and expectation each time).
        var commands: [[UInt8]] = []
        var acks: [[UInt8]] = []
        var sequence = clientISN + 1
        for i in 0..<1000 {
            let port = 20000 + i
            let text = Array("PORT 192,0,2,10,\(port / 256),\(port % 256)\r\n".utf8)
            commands.append(PacketTemplates.tcp(source: client, sourcePort: 40000, destination: server, destinationPort: 21,
                                                text: text, sequence: sequence, acknowledgement: serverISN + 1, flags: 0x18))
            sequence &+= UInt32(text.count)
            // The ACK carries the rewritten stream's numbers; close enough for the cost of mapping.
            acks.append(PacketTemplates.tcp(source: server, sourcePort: 21, destination: external, destinationPort: 40000,
                                            sequence: serverISN + 1, acknowledgement: sequence, flags: 0x10))
        }
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            commands[i].withUnsafeMutableBytes {
                blackHole(translator.translate($0, direction: .outbound, checksum: PacketChecksumState(), now: start))
            }
            acks[i].withUnsafeMutableBytes {
                blackHole(translator.translate($0, direction: .inbound, checksum: PacketChecksumState(), now: start))
            }
        }
        benchmark.stopMeasurement()
    }
}

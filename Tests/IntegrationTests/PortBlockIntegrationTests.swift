import Foundation
@testable import Masqd
@testable import MasqdLab
import NATCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Port block allocation (--port-block-size, issue #15 item 4) through the real masqd: two LAN
/// hosts open several TCP and UDP flows to a server in the "internet" namespace; the server
/// sees each host's source ports inside one block of 64 (a different block per host); the
/// journal has one allocation and one release line per host, no line per flow; and the IPFIX
/// datagrams, caught by a Python socket in the server namespace (nfdump 1.7's nfcapd keeps no
/// port-range fields), decode here to template 258 and natEvent 16/17 records with the blocks.
@Suite(.integrationLimit)
struct PortBlockIntegrationTests {
    static let blockSize = 64

    /// The server: TCP 8080 and UDP 9999 note each peer (`tcp ADDR PORT`, `udp ADDR PORT`) and
    /// UDP 4739 notes each IPFIX datagram (`ipfix HEX`), one line each, flushed at once.
    static let serverScript = """
        import selectors, socket, sys
        out = open(sys.argv[2], "w", buffering=1)
        sel = selectors.DefaultSelector()
        tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((sys.argv[1], 8080)); tcp.listen(64)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((sys.argv[1], 9999))
        ipfix = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ipfix.bind((sys.argv[1], 4739))
        for s in (tcp, udp, ipfix): sel.register(s, selectors.EVENT_READ)
        print("ready", flush=True)
        while True:
            for key, _ in sel.select():
                s = key.fileobj
                if s is tcp:
                    c, peer = tcp.accept(); out.write("tcp %s %d\\n" % peer); c.close()
                elif s is udp:
                    data, peer = udp.recvfrom(2048); out.write("udp %s %d\\n" % peer); udp.sendto(data, peer)
                else:
                    data, _ = ipfix.recvfrom(65535); out.write("ipfix %s\\n" % data.hex())
        """

    /// A LAN host's flows: `count` TCP connections and `count` UDP exchanges, each from its own port.
    static let clientScript = """
        import socket, sys
        server, count = sys.argv[1], int(sys.argv[2])
        # 15 s: room for the SYN's retransmissions (1, 3, 7 s) on a loaded machine; CI's second
        # full run once saw a first connection time out at 5 s.
        for i in range(count):
            t = socket.create_connection((server, 8080), timeout=15); t.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(15)
            u.bind(("0.0.0.0", 40000 + i)); u.sendto(b"block", (server, 9999)); u.recvfrom(2048); u.close()
        print("done")
        """

    /// One IPFIX data record of template 258, decoded with the template's own field list.
    struct BlockRecord: Equatable, CustomStringConvertible {
        var event: Int, inside: String, outside: String, start: Int, end: Int, step: Int, ports: Int
        var description: String { "natEvent \(event) \(inside) -> \(outside):\(start)-\(end) step \(step) ports \(ports)" }
    }

    static func bytes(_ hex: Substring) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex, let next = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex) {
            out.append(UInt8(hex[i..<next], radix: 16)!)
            i = next
        }
        return out
    }

    /// Walks each message's sets (RFC 7011 §3): template sets give template 258's (IE, length)
    /// list, data sets of 258 are read field by field by IE number.
    static func blockRecords(_ messages: [[UInt8]]) throws -> (template: [(id: Int, length: Int)], records: [BlockRecord]) {
        var template: [(id: Int, length: Int)] = []
        var records: [BlockRecord] = []
        func be(_ b: [UInt8], _ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 << 8 | Int(b[at + $1]) } }
        func address(_ v: Int) -> String { "\(v >> 24 & 255).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)" }
        for m in messages {
            guard m.count >= 16, be(m, 0, 2) == 10, be(m, 2, 2) == m.count else { throw IntegrationFailure("not an IPFIX message: \(m)") }
            var at = 16
            while at + 4 <= m.count {
                let setID = be(m, at, 2), setLength = be(m, at + 2, 2)
                guard setLength >= 4, at + setLength <= m.count else { throw IntegrationFailure("bad set length \(setLength)") }
                if setID == 2 {
                    var t = at + 4
                    while t + 4 <= at + setLength {
                        let id = be(m, t, 2), fields = be(m, t + 2, 2)
                        let list = (0..<fields).map { (id: be(m, t + 4 + 4 * $0, 2), length: be(m, t + 6 + 4 * $0, 2)) }
                        if id == 258 { template = list }
                        t += 4 + 4 * fields
                    }
                } else if setID == 258 {
                    guard !template.isEmpty else { throw IntegrationFailure("data set 258 before its template") }
                    let size = template.reduce(0) { $0 + $1.length }
                    var r = at + 4
                    while r + size <= at + setLength {
                        var values: [Int: Int] = [:]
                        var f = r
                        for field in template {
                            values[field.id] = be(m, f, field.length)
                            f += field.length
                        }
                        records.append(BlockRecord(event: values[230] ?? -1, inside: address(values[8] ?? 0), outside: address(values[225] ?? 0),
                                                   start: values[361] ?? -1, end: values[362] ?? -1, step: values[363] ?? -1, ports: values[364] ?? -1))
                        r += size
                    }
                }
                at += setLength
            }
        }
        return (template, records)
    }

    @Test("two hosts, TCP and UDP flows each: ports inside one block per host, one journal line and one IPFIX record per block and event")
    func blocksThroughTheEngine() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(187)
        let server = LabTopology.serverAddress, wan = LabTopology.routerWANAddress
        let hosts = [LabTopology.host1Address, LabTopology.host2Address]
        try Integration.withTopology("pb") { lab in
            let serverPy = lab.workDir + "/pb-server.py", clientPy = lab.workDir + "/pb-client.py", seen = lab.workDir + "/pb-seen.txt"
            try Self.serverScript.write(toFile: serverPy, atomically: true, encoding: .utf8)
            try Self.clientScript.write(toFile: clientPy, atomically: true, encoding: .utf8)
            let listener = try lab.spawn(.server, ["python3", serverPy, server, seen], name: "pb-server")
            #expect(listener.waitForOutput(containing: "ready", timeout: 5), "the server script did not start:\n\(listener.output)")

            try lab.installRules(masqd: masqd, queue: queue)
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: [
                "--port-block-size", "\(Self.blockSize)", "--max-port-blocks-per-host", "2",
                "--audit-log", "mappings", "--ipfix-collector", "\(server):4739",
                "--timeout", "udp=3", "--timeout", "tcp-closed=3", "--timeout", "tcp-transitory=3",
            ])
            defer { engine.stop(grace: 5) }

            for (node, _) in zip([LabTopology.Node.host1, .host2], hosts) {
                let client = try lab.run(node, ["python3", clientPy, server, "5"], timeout: 60)
                #expect(client.succeeded && client.stdout.contains("done"), "\(client.summary)")
            }

            // Every flow ends (short timeouts); the blocks go back with their last mapping.
            #expect(try Semantics.flowsDrained(lab, masqd, timeout: 20), "flows still listed after 20 s")
            usleep(500_000) // the exporter's round and the datagrams' way
            let stats = try Semantics.statsText(lab, masqd)
            let counters = Semantics.counters(stats)
            listener.stop(grace: 2)

            let log = try String(contentsOfFile: seen, encoding: .utf8).split(separator: "\n")
            // What the server saw: all from the WAN address, 5 TCP and 5 UDP per host... by port block.
            let peers = log.filter { $0.hasPrefix("tcp ") || $0.hasPrefix("udp ") }.map { $0.split(separator: " ") }
            #expect(peers.count == 20, "server saw:\n\(log.joined(separator: "\n"))")
            #expect(peers.allSatisfy { $0[1] == Substring(wan) })
            let lines = engine.lines.filter { $0.contains("nat-event ") }
            var blocks: [String: ClosedRange<Int>] = [:]
            for host in hosts {
                let allocated = lines.filter { $0.contains("nat-event port-block-allocated internal=\(host) external=\(wan):") }
                #expect(allocated.count == 1, "journal:\n\(lines.joined(separator: "\n"))")
                guard let line = allocated.first, let field = line.split(separator: " ").first(where: { $0.hasPrefix("external=") }) else { continue }
                let range = field.split(separator: ":")[1].split(separator: "-").compactMap { Int($0) }
                #expect(range.count == 2 && range[1] - range[0] == Self.blockSize - 1 && (range[0] - 1024) % Self.blockSize == 0, "\(line)")
                guard range.count == 2 else { continue }
                blocks[host] = range[0]...range[1]
                #expect(lines.filter { $0.contains("nat-event port-block-released internal=\(host) external=\(wan):\(range[0])-\(range[1]) reason=") }.count == 1,
                        "journal:\n\(lines.joined(separator: "\n"))")
            }
            // Each host's ten flows inside its own block; the two blocks apart.
            #expect(blocks.count == 2 && blocks[hosts[0]] != blocks[hosts[1]])
            let ports = peers.compactMap { Int($0[2]) }
            let inBlocks = blocks.values.map { block in ports.filter { block.contains($0) }.count }
            #expect(inBlocks == [10, 10], "server ports \(ports), blocks \(blocks)")
            // One line per block and event, none per mapping or session.
            #expect(lines.count == 4 && counters["audit_lines"] == 4, "journal:\n\(lines.joined(separator: "\n"))")
            #expect(counters["port_blocks_allocated"] == 2 && counters["port_blocks_released"] == 2 && counters["port_blocks_active"] == 0, "stats:\n\(stats)")

            // The IPFIX datagrams: template 258's fields, then 2 allocations and 2 releases.
            let messages = log.filter { $0.hasPrefix("ipfix ") }.map { Self.bytes($0.dropFirst(6)) }
            let (template, records) = try Self.blockRecords(messages)
            #expect(template.map(\.id) == [323, 230, 8, 225, 361, 362, 363, 364] && template.map(\.length) == [8, 1, 4, 4, 2, 2, 2, 2])
            var expected: [BlockRecord] = []
            for event in [16, 17] {
                for host in hosts {
                    guard let block = blocks[host] else { continue }
                    expected.append(BlockRecord(event: event, inside: host, outside: wan, start: block.lowerBound, end: block.upperBound,
                                                step: 1, ports: Self.blockSize))
                }
            }
            #expect(records.count == 4 && Set(records.map(\.description)) == Set(expected.map(\.description)), "records: \(records)")
            #expect(counters["ipfix_records_sent"] == 4 && counters["ipfix_send_errors"] == 0, "stats:\n\(stats)")
        }
    }

    static func failure(_ args: [String]) -> String { OptionCheck.message(["--wan", "eth0"] + args) }

    @Test("the options: one-line errors for bad values, the config file keys, a reload may change the cap but not the size")
    func options() throws {
        let settings = try OptionCheck.settings(["--wan", "eth0", "--port-block-size", "256", "--max-port-blocks-per-host", "4"])
        #expect(settings.nat.portBlocks == PortBlockSettings(size: 256, maxPerHost: 4))
        #expect(settings.audit.portBlocks)
        #expect(try OptionCheck.settings(["--wan", "eth0"]).nat.portBlocks == nil)
        #expect(try OptionCheck.settings(["--wan", "eth0", "--port-block-size", "64"]).nat.portBlocks?.maxPerHost == 8)
        #expect(Self.failure(["--port-block-size", "8"]) == "--port-block-size 8: expected a number of ports from 16 to 16384")
        #expect(Self.failure(["--port-block-size", "lots"]) == "--port-block-size lots: expected a number of ports from 16 to 16384")
        #expect(Self.failure(["--port-range", "20000-20100", "--port-block-size", "64"])
            == "--port-block-size 64: the port range 20000-20100 holds fewer than two blocks of 64 ports")
        #expect(Self.failure(["--port-block-size", "64", "--max-port-blocks-per-host", "0"])
            == "--max-port-blocks-per-host 0: expected a number from 1 to 1024")
        #expect(Self.failure(["--max-port-blocks-per-host", "3"]) == "--max-port-blocks-per-host 3: needs --port-block-size")

        let path = try OptionCheck.write("wan: eth0\nport-block-size: 128\nmax-port-blocks-per-host: 3\n")
        let fromFile = try OptionCheck.settings(["--config", path])
        #expect(fromFile.nat.portBlocks == PortBlockSettings(size: 128, maxPerHost: 3))
        let bad = try OptionCheck.write("wan: eth0\nport-block-size: 10\n")
        #expect(Self.failure(["--config", bad]) == "\(bad):2: port-block-size 10: expected a number of ports from 16 to 16384")

        let other = try OptionCheck.settings(["--wan", "eth0", "--port-block-size", "64"])
        #expect(Engine.unchangeable(settings, other).map { "\($0.key) \($0.old) -> \($0.new)" } == ["port-block-size 256 -> 64"])
        let capOnly = try OptionCheck.settings(["--wan", "eth0", "--port-block-size", "256", "--max-port-blocks-per-host", "9"])
        #expect(Engine.unchangeable(settings, capOnly).isEmpty)
    }
}

import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--queues A-B` (issue #7): one worker per queue, one shared translation state. The kernel's
/// --queue-balance hashes the address pair and protocol, so a flow's outbound packets
/// (LAN host ↔ server) and its replies (server ↔ WAN address) usually land on different
/// workers — every translation here only works if the workers really share their state.
@Suite(.integrationLimit)
struct MultiQueueTests: LabAddresses {
    @Test("--queues with two workers: HTTP from two hosts at once, UDP, ping and fragmented ping through the far host all translate; both workers get traffic")
    func twoWorkersShareOneState() throws {
        let masqd = try Integration.masqdExecutable()
        let first = Integration.queue(61), last = first + 1
        try Integration.withTopology("mq", farHost: true) { lab in
            let options = ["--queues", "\(first)-\(last)", "--wan", LabTopology.wanInterface, "--lan", LabTopology.lanCIDR] + Integration.modeOptions

            let printed = try lab.masqd(masqd, ["rules", "print"] + options)
            #expect(printed.succeeded && printed.stdout.contains("--queue-balance \(first):\(last)"), "rules print:\n\(printed.summary)")
            let install = try lab.masqd(masqd, ["rules", "install"] + options)
            try #require(install.succeeded, "rules install: \(install.summary)")
            let engine = try Integration.startRun(lab, masqd, options + ["--control", lab.controlPath])
            defer { engine.stop(grace: 5) }
            // Per network namespace: read it in the router's.
            let table = try lab.run(.router, ["cat", "/proc/net/netfilter/nfnetlink_queue"])
            let bound = table.lines.compactMap { Int($0.split(separator: " ").first ?? "") }
            #expect(bound.contains(first) && bound.contains(last), "queues bound: \(bound)")

            // Two downloads at once (TCP from h1 and h2), UDP and ICMP from both, and the far host
            // (another address pair): twelve (pair, protocol) hashes, so the chance that all of them
            // land on one of the two queues is 2/2^12.
            let file = try lab.serveRandomFile("big.bin", megabytes: 8, from: .server, port: 8080)
            let original = file.sha256, http = file.http
            let httpFar = try lab.spawnHelper(.far, ["http", file.root, "8080"], name: "http-far")
            let echo = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let echoFar = try lab.spawnHelper(.far, ["udpecho", "9999"], name: "udpecho-far")
            _ = (http, httpFar, echo, echoFar)
            usleep(300_000)

            var downloads: [(String, BackgroundProcess)] = []
            for (node, target) in [(LabTopology.Node.host1, server), (.host2, server), (.host1, LabTopology.farAddress), (.host2, LabTopology.farAddress)] {
                let copy = lab.workDir + "/copy-\(node.rawValue)-\(target).bin"
                downloads.append((copy, try lab.spawnCurl(from: node, "http://\(target):8080/big.bin", to: copy, name: "curl-\(node.rawValue)-\(target)")))
            }
            for node in [LabTopology.Node.host1, .host2] {
                for target in [server, LabTopology.farAddress] {
                    let udp = try lab.run(node, lab.helper(["udpsend", target, "9999", "--msg", "hello-\(node.rawValue)"]), timeout: 20)
                    #expect(udp.succeeded && udp.stdout.contains("seen-from \(wan):"), "UDP \(node.rawValue) → \(target): \(udp.summary)")
                    let ping = try lab.run(node, lab.helper(["ping", target, "--count", "3"]), timeout: 20)
                    #expect(ping.succeeded && ping.stdout.contains("3 sent, 3 received"), "ping \(node.rawValue) → \(target): \(ping.summary)")
                }
            }
            let fragmented = try lab.run(.host1, ["ping", "-c", "3", "-s", "4000", "-W", "2", LabTopology.farAddress], timeout: 20)
            #expect(fragmented.succeeded && fragmented.stdout.contains("3 received"), "ping -s 4000: \(fragmented.summary)")
            for (copy, curl) in downloads {
                let status = curl.waitForExit(timeout: 70)
                #expect(status == 0, "\(curl.name) failed:\n\(curl.output)")
                #expect(try Semantics.sha256(copy) == original, "\(curl.name): the download differs from the original")
            }

            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["queues"] == 2)
            let perQueue = [first, last].map { stats["queue_\($0)_packets_received"] ?? 0 }
            #expect(perQueue.allSatisfy { $0 > 0 }, "each worker should have had packets: \(perQueue)")
            #expect(perQueue.reduce(0, +) == stats["packets_received"], "per-queue counts \(perQueue) must add up to packets_received \(stats["packets_received"] ?? -1)")
            // In the fast-path run mode the downloads' bulk is the kernel's, their opening the engine's.
            let least = Integration.modeOptions.isEmpty ? 100 : 20
            #expect(stats["translated_inbound", default: 0] > least && stats["translated_outbound", default: 0] > least,
                    "inbound \(stats["translated_inbound"] ?? -1), outbound \(stats["translated_outbound"] ?? -1)")
            #expect(stats["fragments_datagrams_reassembled", default: 0] >= 6, "fragmented pings both ways: \(stats["fragments_datagrams_reassembled"] ?? -1)")
            #expect(engine.isRunning, "masqd died:\n\(engine.output)")

            // A stop with two workers: both end, the process exits promptly.
            let started = Date()
            engine.stop(grace: 5)
            #expect(Date().timeIntervalSince(started) < 4.5, "masqd with two workers took too long to stop:\n\(engine.output)")
            #expect(engine.output.contains("queues \(first)-\(last) (one worker each)"), "\(engine.output)")
        }
    }

    @Test("--queues: bad ranges and --queue with --queues are refused with one line naming the option")
    func badQueueRanges() throws {
        let masqd = try Integration.masqdExecutable()
        for (args, expected) in [
            (["--queues", "5-3"], "--queues 5-3: the range is empty"),
            (["--queues", "5"], "--queues 5: not a queue range"),
            (["--queues", "1-100"], "--queues 1-100: more than 64 queues"),
            (["--queue", "1", "--queues", "2-3"], "--queues 2-3: give either --queue or --queues"),
        ] {
            let result = try Shell.run([masqd, "rules", "print", "--wan", "lo"] + args)
            #expect(!result.succeeded, "\(args) was accepted")
            #expect(result.stderr.contains(expected), "\(args): \(result.stderr)")
        }
    }
}

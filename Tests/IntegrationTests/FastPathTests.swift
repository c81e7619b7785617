import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The kernel fast path end to end: the real masqd with --fast-path in the lab topology,
/// the real BPF program on tc ingress of br0 (LAN) and wan0 (WAN), real downloads with curl.
/// The map's own counters (`masqd stats` fast_path_*) show which path the packets took;
/// sha256 of the file shows that none was mistranslated, lost or visibly reordered.
@Suite(.integrationLimit, .serialized)
struct FastPathTests: LabAddresses {
    static func buildObject(_ masqd: String) throws { try Integration.buildFastPathObject(masqd) }

    /// A file of `megabytes` random MiB served over HTTP from the server (paced at `rate` bytes/s if given).
    static func serve(_ lab: LabTopology, megabytes: Int, rate: Int? = nil) throws -> String {
        try lab.serveRandomFile("big.bin", megabytes: megabytes, from: .server, port: 8080, rate: rate).sha256
    }

    /// `Integration.withEngine` with `--fast-path` and `options`, the BPF object built first.
    static func withFastPath(_ tag: String, queueIndex: Int, options: [String] = [],
                             _ body: (LabTopology, String, BackgroundProcess) throws -> Void) throws {
        let masqd = try Integration.masqdExecutable()
        try buildObject(masqd)
        try Integration.withEngine(executable: masqd, tag, queue: Integration.queue(queueIndex), options: ["--fast-path"] + options, body)
    }

    static func tcFilters(_ lab: LabTopology) throws -> String {
        try lab.run(.router, ["tc", "filter", "show", "dev", "wan0", "ingress"]).stdout
            + (try lab.run(.router, ["tc", "filter", "show", "dev", "br0", "ingress"]).stdout)
    }

    @Test("A 64 MiB download: the bulk of its packets take the fast path, the file is intact, FIN ends the offload, stop detaches")
    func bulkDownload() throws {
        let masqd = try Integration.masqdExecutable()
        try Self.buildObject(masqd)
        let queue = Integration.queue(161)
        try Integration.withTopology("fpb") { lab in
            let expected = try Self.serve(lab, megabytes: 64)
            try lab.installRules(masqd: masqd, queue: queue)
            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: ["--fast-path"])
            defer { engine.stop(grace: 5) }
            let filters = try Self.tcFilters(lab)
            #expect(filters.contains("masqd_inbound") && filters.contains("masqd_outbound"), "tc filters:\n\(filters)\n\(engine.output)")

            let file = lab.workDir + "/got.bin"
            let curl = try lab.curl(from: .host1, "http://\(server):8080/big.bin", to: file)
            #expect(curl.succeeded, "\(curl.summary)\n\(engine.output)")
            #expect(try Semantics.sha256(file) == expected)

            // The FIN went to the engine and the BPF program removed the entries; the next reading (1 s) sees them gone.
            let stats = try Semantics.stats(lab, masqd, within: 3) { $0["fast_path_flows_active"] == 0 && $0["fast_path_flows_removed", default: 0] >= 1 }
            let fast = stats["fast_path_packets", default: 0], slow = stats["packets_received", default: 0]
            print("fast path bulk: \(fast) packets \(stats["fast_path_bytes", default: 0]) bytes in the kernel, \(slow) packets through the engine")
            #expect(stats["fast_path_flows_offloaded"] == 1 && stats["fast_path_flows_removed"] == 1 && stats["fast_path_flows_active"] == 0, "\(stats)")
            #expect(stats["fast_path_map_full"] == 0 && stats["fast_path_map_errors"] == 0 && stats["fast_path_events_dropped"] == 0, "\(stats)")
            // 64 MiB is about 46000 full segments one way and half as many ACKs back.
            #expect(fast > 40_000 && fast > 20 * slow, "fast path \(fast) packets, engine \(slow): \(stats)")
            #expect(stats["fast_path_bytes", default: 0] > 60 * 1_048_576, "\(stats)")
            // The server's FIN after 64 MiB in the kernel: judged on the kernel's record of the
            // window (FastPath-Window.swift), not on the engine's from before the offload.
            #expect(stats["ignored_fin_out_of_window"] == 0 && stats["ignored_rst_out_of_window"] == 0, "\(stats)")
            let flows = try lab.masqd(masqd, ["flows", "tcp", "--control", lab.controlPath]).stdout
            print("fast path bulk: flows after the download: \(flows)")
            #expect(!flows.contains("ESTABLISHED"), "the closed connection is still ESTABLISHED in the engine:\n\(flows)")
            let mapID = engine.output.split(separator: " ").drop { $0 != "id" }.dropFirst().first.map(String.init) ?? "?"
            let dump = try lab.run(.router, ["bpftool", "-j", "map", "dump", "id", mapID])
            #expect(dump.succeeded && dump.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "map \(mapID): \(dump.summary)")

            #expect(engine.stop(grace: 5) == 0, "\(engine.output)")
            let after = try Self.tcFilters(lab)
            #expect(!after.contains("masqd_"), "still attached after stop:\n\(after)")
        }
    }

    @Test("A paced 24 MiB download offloaded 1 s into the transfer (--fast-path-delay 1): both paths carry it, the file is intact, listed offloaded")
    func offloadMidFlow() throws {
        try Self.withFastPath("fpm", queueIndex: 162, options: ["--fast-path-delay", "1"]) { lab, masqd, _ in
            let expected = try Self.serve(lab, megabytes: 24, rate: 8_000_000)
            let file = lab.workDir + "/got.bin"
            let curl = try lab.spawnCurl(from: .host1, "http://\(server):8080/big.bin", to: file, name: "curl")
            usleep(2_000_000)
            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).stdout
            #expect(flows.contains("-> \(server):8080") && flows.contains(" offloaded"), "masqd flows:\n\(flows)")
            #expect(curl.waitForExit(timeout: 60) == 0, "\(curl.output)")
            #expect(try Semantics.sha256(file) == expected)
            usleep(1_500_000)
            let stats = try Semantics.stats(lab, masqd)
            // The first second (about 8 MB) went through the engine, the rest through the fast path.
            #expect(stats["translated_inbound", default: 0] > 200, "\(stats)")
            let bytes = stats["fast_path_bytes", default: 0]
            print("fast path mid-flow: \(stats["fast_path_packets", default: 0]) packets \(bytes) bytes in the kernel, \(stats["packets_received", default: 0]) packets through the engine")
            #expect(bytes > 8 * 1_048_576 && bytes < 22 * 1_048_576, "\(stats)")
            #expect(stats["fast_path_flows_offloaded"] == 1 && stats["fast_path_flows_active"] == 0, "\(stats)")
        }
    }

    @Test("UDP: offloaded once answered; 8 s of fast-path-only traffic outlive its 5 s timeout; every echo intact")
    func udpOutlivesTimeout() throws {
        try Self.withFastPath("fpu", queueIndex: 165, options: ["--timeout", "udp=5"]) { lab, masqd, _ in
            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            // One socket, one flow: 40 echoes of 1000 bytes over 8 s, each checked (the kernel drops a
            // bad checksum; the echo names the source it saw: the WAN address).
            let script = """
            import socket, sys, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 41000)); s.settimeout(2)
            for i in range(40):
                msg = (b"%04d" % i) * 250
                s.sendto(msg, ("\(server)", 9999))
                data, peer = s.recvfrom(2048)
                if not data.startswith(b"echo " + msg + b" seen-from \(LabTopology.routerWANAddress):"): print("bad echo", i, data[:40]); sys.exit(1)
                time.sleep(0.2)
            print("echoes ok")
            """
            let run = try lab.run(.host2, [LabTopology.python, "-c", script], timeout: 30)
            #expect(run.succeeded && run.stdout.contains("echoes ok"), "\(run.summary)")
            usleep(1_200_000)
            let stats = try Semantics.stats(lab, masqd)
            print("fast path udp: \(stats["fast_path_packets", default: 0]) packets in the kernel, \(stats["packets_received", default: 0]) through the engine")
            #expect(stats["fast_path_flows_offloaded"] == 1 && stats["fast_path_flows_active"] == 1, "\(stats)")
            // All but the first exchange or so: 80 datagrams in all.
            #expect(stats["fast_path_packets", default: 0] >= 74 && stats["packets_received", default: 0] <= 6, "\(stats)")
            #expect(stats["flows_expired"] == 0, "\(stats)")
            let flows = try lab.masqd(masqd, ["flows", "--control", lab.controlPath]).stdout
            #expect(flows.contains("udp \(LabTopology.host2Address):41000 -> \(server):9999") && flows.contains(" offloaded"), "\(flows)")
        }
    }

    @Test("A restart with --state-file: the saved TCP connection is offloaded again at start; its next lines go through the kernel")
    func restoredFlowOffloaded() throws {
        let masqd = try Integration.masqdExecutable()
        try Self.buildObject(masqd)
        let queue = Integration.queue(166)
        try Integration.withTopology("fpr") { lab in
            try lab.installRules(masqd: masqd, queue: queue)
            let options = ["--fast-path", "--state-file", lab.workDir + "/masqd.state"]
            let first = try lab.startEngine(masqd: masqd, queue: queue, extra: options)
            // A line echo server and a client that sends a line every 0.3 s for 6 s, checking each answer.
            let serverScript = """
            import socket
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 7000)); l.listen(1); print("ready", flush=True)
            c, _ = l.accept(); f = c.makefile("rwb")
            for line in f: f.write(b"echo " + line); f.flush()
            """
            let clientScript = """
            import socket, sys, time
            s = socket.create_connection(("\(server)", 7000), timeout=5); f = s.makefile("rwb")
            for i in range(20):
                f.write(b"line %d\\n" % i); f.flush()
                if f.readline() != b"echo line %d\\n" % i: print("bad answer", i); sys.exit(1)
                time.sleep(0.3)
            print("answers ok")
            """
            _ = try lab.spawn(.server, [LabTopology.python, "-c", serverScript], name: "lineserver")
            usleep(500_000)
            let client = try lab.spawn(.host1, [LabTopology.python, "-c", clientScript], name: "lineclient")
            usleep(1_500_000)
            #expect(first.stop(grace: 5) == 0, "\(first.output)")
            let second = try lab.startEngine(masqd: masqd, queue: queue, extra: options)
            defer { second.stop(grace: 5) }
            usleep(500_000)
            let restored = try Semantics.stats(lab, masqd)
            #expect(restored["state_restored_flows"] == 1 && restored["fast_path_flows_offloaded"] == 1, "\(restored.filter { $0.key.hasPrefix("state") || $0.key.hasPrefix("fast") })\n\(second.output)")
            #expect(client.waitForExit(timeout: 20) == 0, "\(client.output)")
            usleep(1_200_000)
            let after = try Semantics.stats(lab, masqd)
            // The rest of the 20 lines and answers, and their ACKs, in the kernel; the engine saw the FINs.
            #expect(after["fast_path_packets", default: 0] >= 20 && after["packets_received", default: 0] <= 8, "\(after.filter { $0.key.hasPrefix("fast") || $0.key == "packets_received" })")
        }
    }

    @Test("A WAN address change: the offloaded flow made with the old address is flushed from the map too; the next exchange uses the new one")
    func wanAddressChange() throws {
        try Self.withFastPath("fpw", queueIndex: 167) { lab, masqd, _ in
            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let echo = lab.helper(["udpsend", server, "9999", "--sport", "42000", "--msg", "before"])
            #expect(try lab.run(.host1, echo).stdout.contains("seen-from \(LabTopology.routerWANAddress):"))
            usleep(1_200_000)
            #expect(try Semantics.stats(lab, masqd)["fast_path_flows_active"] == 1)
            let newAddress = "203.0.113.9"
            // The new address first, promoted when the old (primary) one goes: the link and its routes stay up.
            try lab.check(.router, ["sysctl", "-qw", "net.ipv4.conf.\(LabTopology.wanInterface).promote_secondaries=1"])
            try lab.check(.router, ["ip", "addr", "add", "\(newAddress)/24", "dev", LabTopology.wanInterface])
            try lab.check(.router, ["ip", "addr", "del", "\(LabTopology.routerWANAddress)/24", "dev", LabTopology.wanInterface])
            let stats = try Semantics.stats(lab, masqd, within: 3) { $0["fast_path_flows_active"] == 0 }
            #expect(stats["external_address_changes", default: 0] >= 1 && stats["fast_path_flows_active"] == 0 && stats["fast_path_flows_removed"] == 1,
                    "\(stats.filter { $0.key.hasPrefix("fast") || $0.key.hasPrefix("external") })")
            let again = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--sport", "42000", "--msg", "after"]))
            #expect(again.stdout.contains("seen-from \(newAddress):"), "\(again.summary)")
        }
    }

    @Test("A crashed engine's programs: replaced by the next start, removed by `rules remove`")
    func crashLeftovers() throws {
        let masqd = try Integration.masqdExecutable()
        try Self.buildObject(masqd)
        let queue = Integration.queue(164)
        try Integration.withTopology("fpc") { lab in
            try lab.installRules(masqd: masqd, queue: queue)
            let first = try lab.startEngine(masqd: masqd, queue: queue, extra: ["--fast-path"])
            kill(first.pid, SIGKILL)
            _ = first.waitForExit(timeout: 5)
            #expect(try Self.tcFilters(lab).contains("masqd_inbound"), "the program went away with a SIGKILLed engine?")
            let second = try lab.startEngine(masqd: masqd, queue: queue, extra: ["--fast-path"])
            #expect(second.waitForOutput(containing: "replaced masqd's tc program left on interface", timeout: 5), "\(second.output)")
            kill(second.pid, SIGKILL)
            _ = second.waitForExit(timeout: 5)
            let remove = try lab.masqd(masqd, ["rules", "remove"] + lab.engineOptions(queue: queue))
            #expect(remove.succeeded, "\(remove.summary)")
            let filters = try Self.tcFilters(lab)
            #expect(!filters.contains("masqd_"), "left after rules remove:\n\(filters)")
        }
    }

    @Test("--fast-path without its BPF object: refused at start with one line naming it")
    func missingObject() throws {
        let masqd = try Integration.masqdExecutable()
        try Integration.withTopology("fpo") { lab in
            let run = try lab.masqd(masqd, ["run"] + lab.engineOptions(queue: Integration.queue(163))
                                    + ["--control", lab.controlPath, "--fast-path", "--fast-path-object", "/nonexistent/fp.o"], timeout: 20)
            #expect(!run.succeeded)
            let line = "--fast-path: no BPF object at /nonexistent/fp.o (build it with Deploy/build-bpf.sh, or give --fast-path-object)"
            #expect(run.stderr.contains(line), "\(run.summary)")
            #expect(!(try Self.tcFilters(lab)).contains("masqd_"))
        }
    }
}

import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--worker-cpus` (issue #21): each packet worker runs on the CPU it was given, traffic still
/// translates, and a CPU that is not there stops the start with one line naming the option.
@Suite(.integrationLimit)
struct WorkerPinningTests {
    /// The worker threads of a masqd process: thread name (`masqd-qN`) → the CPUs the kernel
    /// lets it run on (`Cpus_allowed_list` of its /proc status).
    static func workerCPUs(pid: Int32) throws -> [String: String] {
        var found: [String: String] = [:]
        for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
            let base = "/proc/\(pid)/task/\(tid)"
            let name = (try? String(contentsOfFile: base + "/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard name.hasPrefix("masqd-q") else { continue }
            let status = try String(contentsOfFile: base + "/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            found[name] = line.map { $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces) }
        }
        return found
    }

    @Test("--worker-cpus 1,0 with two queues: masqd-qA runs on CPU 1 alone, masqd-qB on CPU 0, and UDP from the LAN translates")
    func workersRunWhereTheyWereTold() throws {
        try #require(sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2, "this test needs two online CPUs")
        let masqd = try Integration.masqdExecutable()
        let first = Integration.queue(71), last = first + 1
        try Integration.withTopology("wpn") { lab in
            let options = ["--queues", "\(first)-\(last)", "--wan", LabTopology.wanInterface, "--lan", LabTopology.lanCIDR] + Integration.modeOptions
            let install = try lab.masqd(masqd, ["rules", "install"] + options)
            try #require(install.succeeded, "rules install: \(install.summary)")
            let engine = try Integration.startRun(lab, masqd, options + ["--control", lab.controlPath, "--worker-cpus", "1,0"])
            defer { engine.stop(grace: 5) }

            let cpus = try Self.workerCPUs(pid: engine.pid)
            #expect(cpus == ["masqd-q\(first)": "1", "masqd-q\(last)": "0"], "worker threads and their CPUs: \(cpus)")
            #expect(engine.output.contains("masqd-q\(first) pinned to CPU 1"), "start log:\n\(engine.output)")

            _ = try lab.spawnHelper(.server, ["udpecho", "9999"], name: "udpecho")
            let udp = try lab.run(.host1, lab.helper(["udpsend", LabTopology.serverAddress, "9999", "--msg", "pinned"]), timeout: 20)
            #expect(udp.succeeded && udp.stdout.contains("seen-from \(LabTopology.routerWANAddress):"), "UDP through the pinned workers: \(udp.summary)")
            #expect(engine.isRunning, "masqd run died:\n\(engine.output)")
        }
    }

    @Test("--worker-cpus naming a CPU that is not online: masqd run exits with one line naming the option, the worker and the CPU")
    func anOfflineCPUStopsTheStart() throws {
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(73)
        try Integration.withTopology("wpo") { lab in
            try lab.installRules(masqd: masqd, queue: queue)
            let run = try lab.masqd(masqd, ["run"] + lab.engineOptions(queue: queue) + ["--control", lab.controlPath, "--worker-cpus", "1023"], timeout: 20)
            #expect(!run.succeeded)
            #expect(run.stderr.contains("--worker-cpus: cannot pin masqd-q\(queue) to CPU 1023: Invalid argument"), "masqd run: \(run.summary)")
        }
    }

    @Test("--worker-cpus values outside 0-1023 or not numbers get one-line errors; a list is kept in order")
    func badValuesAreRefused() throws {
        let expected = "expected a comma-separated list of CPU numbers from 0 to 1023"
        for bad in ["1024", "-1", "a", "1,,2", "0x1"] {
            #expect(OptionCheck.message(["--wan", "eth0", "--worker-cpus=\(bad)"]) == "--worker-cpus \(bad): \(expected)")
        }
        #expect(try OptionCheck.settings(["--wan", "eth0", "--worker-cpus", "3,1,3"]).workerCPUs == [3, 1, 3])
        #expect(try OptionCheck.settings(["--wan", "eth0"]).workerCPUs.isEmpty)
    }
}

import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Fail-closed by default, fail-open only when asked (issue #8): with the rules in and no
/// engine running, a LAN host's UDP never reaches the WAN — unless `--fail-open` put
/// `--queue-bypass` on the rules, and then it leaves untranslated, with its LAN address
/// (the risk the option's help and the README name).
@Suite(.integrationLimit)
struct FailModeTests: LabAddresses {
    /// UDP from h1 to the server while `sniff` runs there; the sources the server saw.
    func sourcesSeen(_ lab: LabTopology, tag: String) throws -> [String] {
        let sniff = try lab.spawnHelper(.server, ["sniff", "eth0"], name: "sniff-\(tag)")
        defer { _ = sniff.stop() }
        _ = try lab.run(.host1, lab.helper(["udpsend", server, "9999", "--msg", tag, "--tries", "2", "--timeout", "0.5"]), timeout: 10)
        usleep(300_000)
        return SniffedPacket.parse(sniff.lines).filter { $0.incoming && $0.proto == "udp" }.map(\.source)
    }

    @Test("no engine running: fail-closed rules drop LAN traffic; --fail-open rules let it out untranslated; with the engine it is translated",
          arguments: Integration.firewalls)
    func failClosedAndFailOpen(firewall: FirewallChoice) throws {
        try Integration.requireEnvironment(firewall)
        let masqd = try Integration.masqdExecutable()
        let queue = Integration.queue(63, firewall)
        try Integration.withTopology(Integration.tag("fm", firewall), firewall: firewall) { lab in
            let options = lab.engineOptions(queue: queue)
            let closed = try lab.masqd(masqd, ["rules", "install"] + options)
            try #require(closed.succeeded, "\(closed.summary)")
            #expect(try sourcesSeen(lab, tag: "closed").isEmpty, "fail-closed: a packet left the WAN with no engine running")
            try #require(try lab.masqd(masqd, ["rules", "remove"] + options).succeeded)

            let print = try lab.masqd(masqd, ["rules", "print", "--fail-open"] + options)
            #expect(print.stdout.contains(firewall == .nft ? " bypass comment" : "--queue-bypass"), "\(print.summary)")
            let open = try lab.masqd(masqd, ["rules", "install", "--fail-open"] + options)
            try #require(open.succeeded, "\(open.summary)")
            let leaked = try sourcesSeen(lab, tag: "open")
            #expect(leaked.contains(LabTopology.host1Address), "fail-open with no engine should pass h1's packet untranslated; the server saw \(leaked)")

            let engine = try lab.startEngine(masqd: masqd, queue: queue, extra: ["--fail-open"])
            defer { _ = engine.stop(grace: 5) }
            let translated = try sourcesSeen(lab, tag: "engine")
            #expect(!translated.isEmpty && translated.allSatisfy { $0 == wan }, "with the engine running the server must see only \(wan): \(translated)")
            #expect(engine.isRunning, "\(engine.output)")
            _ = try lab.masqd(masqd, ["rules", "remove", "--fail-open"] + options)
        }
    }
}

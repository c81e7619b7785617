import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// For ExternalHelperTests: the masqd that Examples/RendezvousHelper builds (the package a
/// user writes outside masqd, with its own helper), started in a topology like the real one,
/// and a rendezvous server for the lab's server namespace.
enum ExternalHelper {
    /// The example's own binary. Tests/run-all.sh builds the example before `swift test`; a
    /// missing binary is a failure that says how to build it, never a skip.
    static func executable() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.path + "/Examples/RendezvousHelper/.build/debug/masqd-rendezvous"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw IntegrationFailure("\(path) is missing: build the example first (cd Examples/RendezvousHelper && swift build); Tests/run-all.sh does")
        }
        return path
    }

    /// A rendezvous server on the lab's server, UDP `port`: it logs each datagram as
    /// `register 'TEXT' from ADDR:PORT` and answers a REGISTER from a port it never used
    /// before (port + 1, + 2, …), as a server introducing a peer would. Only the helper's
    /// expectation lets such an answer through address-and-port-dependent filtering.
    static func startServer(_ lab: LabTopology, port: Int) throws -> BackgroundProcess {
        let script = lab.workDir + "/rendezvous-server-\(port).py"
        try """
        import socket, sys
        port = int(sys.argv[1])
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind(("0.0.0.0", port))
        print("ready", flush=True)
        answers = 0
        while True:
            data, (source, source_port) = listener.recvfrom(2048)
            text = data.decode(errors="replace")
            print("register %r from %s:%d" % (text, source, source_port), flush=True)
            if not text.startswith("REGISTER "):
                continue
            answers += 1
            answer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            answer.bind(("0.0.0.0", port + answers))
            answer.sendto(("WELCOME " + text.split()[1]).encode(), (source, source_port))
            answer.close()

        """.write(toFile: script, atomically: true, encoding: .utf8)
        let process = try lab.spawn(.server, [LabTopology.python, "-u", script, String(port)], name: "rendezvous-\(port)")
        guard process.waitForOutput(containing: "ready", timeout: 10) else {
            _ = process.stop()
            throw IntegrationFailure("the rendezvous server did not start:\n\(process.output)")
        }
        return process
    }

    /// host1 registers `192.0.2.10:SPORT` with the server's `port` from `sourcePort` (three
    /// tries, 1 s each) and waits for any answer: "reply from ADDR:PORT 'TEXT'" or "no reply …".
    static func register(_ lab: LabTopology, port: Int, sourcePort: Int) throws -> CommandResult {
        try lab.run(.host1, lab.helper(["udpsend", LabTopology.serverAddress, String(port), "--sport", String(sourcePort),
                                        "--msg", "REGISTER \(LabTopology.host1Address):\(sourcePort)", "--timeout", "1", "--tries", "3"]),
                    timeout: 15)
    }

    /// What the server's log says it received: (announced endpoint, seen-from endpoint) per REGISTER.
    static func registrations(_ server: BackgroundProcess) -> [(announced: String, source: String)] {
        server.lines.compactMap { line in
            // register 'REGISTER 203.0.113.1:40000' from 203.0.113.1:40000
            let f = line.split(separator: " ")
            guard f.count == 5, f[0] == "register", f[1] == "'REGISTER", f[3] == "from" else { return nil }
            return (String(f[2].dropLast()), String(f[4]))
        }
    }
}

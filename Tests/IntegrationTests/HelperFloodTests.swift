import Foundation
import Masqd
import MasqdLab
import Testing

/// Issue #20 item 6: the helper tables (1024 connections, 1024 expectations) are shared by
/// every host, so one host's SYNs to port 21 used to lock everyone out of FTP. Each host now
/// holds at most its share (--max-helper-flows-per-host, default 128). h1 sends 1500 SYNs
/// from random ports to port 21 of an address on the WAN link that nobody has (a raw-socket
/// flooder: no real peer opens 1500 connections that fast; unanswered, each session would
/// hold its helper row for tcp-opening), then h2 downloads a file over FTP from the server,
/// the real curl and pyftpdlib through the real masqd. Queue indices 91 and 93.
@Suite(.integrationLimit)
struct HelperFloodTests: LabAddresses {
    @Test("h1's 1500 SYNs to server:21 take only h1's share of the FTP helper table; h2's FTP download works")
    func synFloodToFTPLeavesRoomForOthers() throws {
        try FTPLab.requireTools()
        try Integration.withEngine("lpb", queue: Integration.queue(91)) { lab, masqd in
            let root = lab.workDir + "/ftp"
            let sums = try FTPLab.makeFiles(in: root, [("file.bin", 256 << 10)])
            _ = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 21, root: root, name: "pyftpdlib")
            let before = try Semantics.stats(lab, masqd)
            let report = try Flood.run(lab, from: .host1, .synToOnePort, source: h1, destination: "203.0.113.99", destinationPort: 21,
                                       count: 1500, rate: 3000)
            let during = try Semantics.stats(lab, masqd)
            let copy = lab.workDir + "/h2.bin"
            let curl = try FTPLab.curl(lab, from: .host2, "ftp://\(server):21/file.bin", to: copy, [])
            #expect(curl.succeeded, "h2's FTP download after h1's flood (\(report)): \(curl.summary)")
            #expect(try Semantics.sha256(copy) == sums["file.bin"], "h2's FTP download differs")
            let moved = Robust.moved(before, during)
            let held = during["helper_connections"] ?? -1
            #expect(held >= 120 && held <= 128, "helper connections after the flood: \(held); h1's share, 128, should be full")
            #expect((moved["drop_host_helper_limit"] ?? 0) >= 1500 - 128 - 50,
                    "drop_host_helper_limit moved by \(moved["drop_host_helper_limit"] ?? 0) for 1500 SYNs (\(report))")
            #expect(moved["drop_helper_table_full"] == nil, "the shared table filled up: \(moved)")
        }
    }

    @Test("control: with the share as large as the whole table (masqd before issue 20), the same flood locks h2 out of FTP")
    func withoutSharesTheFloodLocksOthersOut() throws {
        try FTPLab.requireTools()
        try Integration.withEngine("lpd", queue: Integration.queue(93), options: ["--max-helper-flows-per-host", "1024"]) { lab, masqd in
            let root = lab.workDir + "/ftp"
            _ = try FTPLab.makeFiles(in: root, [("file.bin", 256 << 10)])
            _ = try FTPLab.startPyftpdlib(lab, on: .server, bind: server, port: 21, root: root, name: "pyftpdlib")
            let report = try Flood.run(lab, from: .host1, .synToOnePort, source: h1, destination: "203.0.113.99", destinationPort: 21,
                                       count: 1500, rate: 3000)
            let curl = try FTPLab.curl(lab, from: .host2, "ftp://\(server):21/file.bin", to: lab.workDir + "/h2.bin", [], maxTime: 8)
            #expect(!curl.succeeded, "h2's FTP download worked although h1 holds the whole helper table (\(report))")
            let stats = try Semantics.stats(lab, masqd)
            #expect(stats["helper_connections"] == 1024 && (stats["drop_helper_table_full"] ?? 0) > 0,
                    "helper_connections \(stats["helper_connections"] ?? -1), drop_helper_table_full \(stats["drop_helper_table_full"] ?? -1)")
        }
    }
}

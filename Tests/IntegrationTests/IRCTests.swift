import Foundation
import Masqd
import MasqdLab
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The IRC DCC helper end to end (issue #6): an inside user (h1, 192.0.2.10) offers a file
/// (DCC SEND) and a chat (DCC CHAT) through a real IRC server (ngircd on 203.0.113.2:6667)
/// to an outside user on the far host (198.51.100.2), who sees the router's address in the
/// offer and connects to it; slipstreaming attempts (an offer relayed TO the inside user,
/// offers not right after " :", an HTTP request carrying an offer) open nothing; and an
/// offer split across two TCP segments is held until its line is complete (one case of
/// which fails: the rest of the line written after the sender's first retransmission
/// timeout, see `SplitPause.long`).
/// Real namespaces, real iptables, the real masqd binary with its default helpers, a real
/// IRC server and a tiny standard-library IRC client; every test has its own namespace
/// prefix (mq<pid>ir?) and NFQUEUE number (indices 36-39).
@Suite(.integrationLimit)
struct IRCTests: LabAddresses {
    /// The ENGINE OPTIONS every test uses: the documented defaults, spelled out.
    static let helperOptions = ["--helpers", "ftp,irc"]

    func clientArgs(_ mode: String, nick: String, peer: String) -> [String] {
        [mode, "--server", server, "--server-port", String(IRCLab.port), "--nick", nick, "--peer", peer]
    }

    // MARK: 1. DCC SEND

    @Test("DCC SEND from h1 through ngircd: the far user is offered 203.0.113.1 (3405803777), connects and gets the file intact")
    func dccSend() throws {
        try IRCLab.requireTools()
        try Integration.withEngine("ira", queue: Integration.queue(36), options: Self.helperOptions, farHost: true) { lab, masqd in
            let sums = try FTPLab.makeFiles(in: lab.workDir + "/files", [("file.bin", 250_000)])
            let file = lab.workDir + "/files/file.bin"
            let ircd = try IRCLab.startServer(lab)
            let listenPort = 40123

            let bob = try IRCLab.startClient(lab, on: .far, clientArgs("receive", nick: "bob", peer: "alice"),
                                             name: "bob", waitFor: "ready")
            let alice = try IRCLab.startClient(lab, on: .host1, clientArgs("offer", nick: "alice", peer: "bob") + [
                "--kind", "SEND", "--bind", h1, "--port", String(listenPort),
                "--advertise", String(IRCLab.host1Integer), "--file", file,
            ], name: "alice")
            let statuses = IRCLab.finish([alice, bob], timeout: 40)
            let transcript = IRCLab.transcript([alice, bob, ircd])
            #expect(statuses == [0, 0], "client exit statuses \(statuses):\n\(transcript)")

            // What alice sent: her own address and port.
            #expect(alice.lines.contains { $0.contains("DCC SEND file.bin \(IRCLab.host1Integer) \(listenPort) 250000") },
                    "alice did not send her own offer:\n\(alice.output)")
            // What bob was relayed: the WAN address, an unprivileged port, the size unchanged.
            let offers = IRCLab.offers(bob.lines)
            #expect(offers.count == 1, "bob saw \(offers.count) offers:\n\(transcript)")
            if let offer = offers.first {
                #expect(offer.kind == "SEND" && offer.argument == "file.bin" && offer.size == 250_000, "offer \(offer)")
                #expect(offer.address == IRCLab.wanInteger, "bob was offered \(offer.address) (\(offer.dotted)), expected \(IRCLab.wanInteger) (\(wan))")
                #expect((1024...65535).contains(offer.port), "offered port \(offer.port)")
                // bob dialled the WAN address and alice accepted bob's real address on her own port.
                #expect(bob.lines.contains { $0.hasPrefix("connected \(far):") && $0.hasSuffix(" -> \(wan):\(offer.port)") },
                        "bob did not connect to \(wan):\(offer.port):\n\(bob.output)")
            }
            #expect(!bob.output.contains(String(IRCLab.host1Integer)) && !bob.output.contains("192.0.2."),
                    "h1's LAN address reached the outside user:\n\(bob.output)")
            #expect(alice.lines.contains { $0.hasPrefix("accepted \(far):") && $0.hasSuffix(" on \(h1):\(listenPort)") },
                    "alice did not accept a connection from \(far) on \(h1):\(listenPort):\n\(alice.output)")

            // The file arrived intact, and every byte was acknowledged back through the NAT.
            let received = bob.lines.first { $0.hasPrefix("received ") } ?? "nothing received"
            #expect(received == "received 250000 of 250000 bytes sha256 \(sums["file.bin"]!)", "bob: \(received); served \(sums["file.bin"]!)")
            #expect(alice.lines.contains("served 250000 bytes, acknowledged 250000"), "alice:\n\(alice.output)")

            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["helper_irc_rewrites"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
            #expect((stats["helper_irc_expectations"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
            #expect((stats["helper_expectations_fulfilled"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
            #expect(stats["helper_irc_refused_foreign_address"] == 0 && stats["helper_irc_malformed"] == 0, "\(IRCLab.helperStats(stats))")
        }
    }

    // MARK: 2. DCC CHAT

    @Test("DCC CHAT from h1 through ngircd: the far user connects to 203.0.113.1 and a line goes each way")
    func dccChat() throws {
        try IRCLab.requireTools()
        try Integration.withEngine("irb", queue: Integration.queue(37), options: Self.helperOptions, farHost: true) { lab, masqd in
            let ircd = try IRCLab.startServer(lab)
            let listenPort = 40777

            let bob = try IRCLab.startClient(lab, on: .far, clientArgs("receive", nick: "bob", peer: "alice"),
                                             name: "bob", waitFor: "ready")
            let alice = try IRCLab.startClient(lab, on: .host1, clientArgs("offer", nick: "alice", peer: "bob") + [
                "--kind", "CHAT", "--bind", h1, "--port", String(listenPort), "--advertise", String(IRCLab.host1Integer),
            ], name: "alice")
            let statuses = IRCLab.finish([alice, bob], timeout: 40)
            let transcript = IRCLab.transcript([alice, bob, ircd])
            #expect(statuses == [0, 0], "client exit statuses \(statuses):\n\(transcript)")

            #expect(alice.lines.contains { $0.contains("DCC CHAT chat \(IRCLab.host1Integer) \(listenPort)") },
                    "alice did not send her own offer:\n\(alice.output)")
            let offers = IRCLab.offers(bob.lines)
            #expect(offers.count == 1, "bob saw \(offers.count) offers:\n\(transcript)")
            if let offer = offers.first {
                #expect(offer.kind == "CHAT" && offer.argument == "chat" && offer.size == nil, "offer \(offer)")
                #expect(offer.address == IRCLab.wanInteger, "bob was offered \(offer.address) (\(offer.dotted)), expected \(IRCLab.wanInteger) (\(wan))")
                #expect((1024...65535).contains(offer.port), "offered port \(offer.port)")
                #expect(bob.lines.contains { $0.hasPrefix("connected \(far):") && $0.hasSuffix(" -> \(wan):\(offer.port)") },
                        "bob did not connect to \(wan):\(offer.port):\n\(bob.output)")
            }
            #expect(alice.lines.contains { $0.hasPrefix("accepted \(far):") && $0.hasSuffix(" on \(h1):\(listenPort)") },
                    "alice did not accept a connection from \(far) on \(h1):\(listenPort):\n\(alice.output)")
            // One line each way over the DCC connection.
            #expect(bob.lines.contains("chat received 'hello from alice inside'"), "bob:\n\(bob.output)")
            #expect(alice.lines.contains("chat received 'hello from bob outside'"), "alice:\n\(alice.output)")

            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["helper_irc_rewrites"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
            #expect((stats["helper_irc_expectations"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
            #expect((stats["helper_expectations_fulfilled"] ?? 0) >= 1, "\(IRCLab.helperStats(stats))")
        }
    }

    // MARK: 3. slipstreaming

    @Test("slipstreaming: an offer relayed to h1, offers not right after \" :\" and an HTTP POST carrying one open nothing; a real offer afterwards does")
    func slipstreaming() throws {
        try IRCLab.requireTools()
        try Integration.withEngine("irc", queue: Integration.queue(38), options: Self.helperOptions, farHost: true) { lab, masqd in
            let ircd = try IRCLab.startServer(lab)
            let bait = 5555, control = 5556
            let gate = lab.workDir + "/gate"
            let common = ["--advertise", String(IRCLab.host1Integer), "--port", String(bait), "--dial-timeout", "3", "--timeout", "30"]

            let alice = try IRCLab.startClient(lab, on: .host1, clientArgs("slip-inside", nick: "alice", peer: "bob") + common + [
                "--bind", h1, "--control-port", String(control),
            ], name: "alice", waitFor: "ready")
            let bob = try IRCLab.startClient(lab, on: .far, clientArgs("slip-outside", nick: "bob", peer: "alice") + common + [
                "--wan", wan, "--gate", gate,
            ], name: "bob")

            // Both rounds of bait are sent and probed: nothing may have been opened yet.
            let probed = bob.waitForOutput(containing: "waiting for gate", timeout: 40)
            let before = try Semantics.stats(lab, masqd)
            try Data().write(to: URL(fileURLWithPath: gate))
            let statuses = IRCLab.finish([bob, alice], timeout: 40)
            let transcript = IRCLab.transcript([alice, bob, ircd])
            #expect(probed, "bob never got to the gate:\n\(transcript)")
            #expect(statuses == [0, 0], "client exit statuses \(statuses):\n\(transcript)")

            // The bait really was delivered as written: the relayed CTCP reached alice intact,
            // and alice's embedded offers reached bob unchanged (h1's own address and port).
            let bogus = "DCC SEND x \(IRCLab.host1Integer) \(bait) 1"
            #expect(alice.lines.contains { $0.hasPrefix("relayed to me ") && $0.contains("'\\x01\(bogus)\\x01'") },
                    "the offer bob sent was not relayed to alice as sent:\n\(transcript)")
            let texts = bob.lines.filter { $0.hasPrefix("text from alice ") }
            #expect(texts.contains("text from alice 'hi \\x01\(bogus)\\x01'"), "bob's view of alice's messages: \(texts)")
            #expect(texts.contains("text from alice 'look: \\x01DCC CHAT chat \(IRCLab.host1Integer) \(bait)\\x01'"), "bob's view: \(texts)")
            #expect(texts.contains("text from alice '\\x01ACTION waves\\x01 \\x01\(bogus)\\x01'"), "bob's view: \(texts)")
            #expect(alice.lines.contains { $0.hasPrefix("sent http 'POST /form HTTP/1.1") }, "alice:\n\(alice.output)")

            // None of it opened 203.0.113.1:5555: bob's probes found nothing, alice's bait
            // listener saw nobody, and the helper made no expectation and rewrote nothing.
            for round in ["relayed", "embedded"] {
                let line = Semantics.line(bob.lines, startingWith: "probe \(round) ") ?? "probe \(round): missing"
                #expect(line.hasPrefix("probe \(round) \(wan):\(bait) refused") || line.hasPrefix("probe \(round) \(wan):\(bait) no answer"),
                        "\(line)\n\(transcript)")
            }
            #expect(!alice.lines.contains { $0.hasPrefix("accepted ") && $0.hasSuffix(":\(bait)") },
                    "an outside connection reached alice's bait listener on \(bait):\n\(alice.output)")
            #expect(before["helper_irc_expectations"] == 0, "before the control offer: \(IRCLab.helperStats(before))")
            #expect(before["helper_irc_rewrites"] == 0, "before the control offer: \(IRCLab.helperStats(before))")
            #expect(before["helper_expectations_pending"] == 0 && before["helper_expectations_fulfilled"] == 0,
                    "before the control offer: \(IRCLab.helperStats(before))")

            // The control: a real offer on the next port is rewritten and reachable, so the
            // probes above would have seen an opening.
            let offers = IRCLab.offers(bob.lines)
            #expect(offers.count == 1 && offers.first?.address == IRCLab.wanInteger, "bob's offers: \(offers.map { "\($0.dotted):\($0.port)" })")
            if let offer = offers.first {
                let line = Semantics.line(bob.lines, startingWith: "probe control ") ?? "probe control: missing"
                #expect(line == "probe control \(wan):\(offer.port) connected", "\(line)\n\(transcript)")
            }
            #expect(alice.lines.contains { $0.hasPrefix("accepted \(far):") && $0.hasSuffix(" on \(h1):\(control)") },
                    "the control connection did not reach alice on \(control):\n\(alice.output)")
            let after = try Semantics.stats(lab, masqd)
            #expect(after["helper_irc_expectations"] == 1 && after["helper_irc_rewrites"] == 1, "after the control offer: \(IRCLab.helperStats(after))")
            #expect(after["helper_expectations_fulfilled"] == 1, "after the control offer: \(IRCLab.helperStats(after))")
        }
    }

    // MARK: 4. an offer split across TCP segments

    /// How alice sends the two parts of her offer.
    enum SplitPause: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// TCP_NODELAY, 50 ms apart: well within the first retransmission timeout (200 ms
        /// minimum on Linux), so the second part is on the wire while the first is held.
        case brief
        /// TCP_NODELAY, 500 ms apart: longer than the first retransmission timeout, so the
        /// sender is retransmitting the held part (congestion window 1) when the rest is written.
        case long
        /// 50 ms apart without TCP_NODELAY (as most clients): Nagle keeps the second part back
        /// until the first is acknowledged.
        case nagle
        var seconds: Double { self == .long ? 0.5 : 0.05 }
        var testDescription: String { "\(Int(seconds * 1000)) ms\(self == .nagle ? ", Nagle" : ", TCP_NODELAY")" }
        var tag: String { switch self { case .brief: "ird"; case .long: "ire"; case .nagle: "irf" } }
        var clientArgs: [String] { ["--split-pause", String(seconds)] + (self == .nagle ? ["--nagle"] : []) }
    }

    @Test("DCC SEND from h1 sent in two TCP segments cut inside the address: held until complete, rewritten, the file arrives",
          .serialized, arguments: SplitPause.allCases)
    func dccSendSplitAcrossSegments(pause: SplitPause) throws {
        try IRCLab.requireTools()
        // Known limitation, kept visible: the core holds the unfinished line by not passing it
        // on, so the server never acknowledges it; when the rest comes more than about one
        // retransmission timeout later, the client's TCP is retransmitting the held bytes and
        // sends nothing new, and after the 4th retransmission the core lets them go unedited
        // (helper_held_released) rather than stall the connection. Fixing it needs the router
        // to acknowledge held bytes itself (packet injection), which masqd does not do.
        // If this case starts passing, withKnownIssue reports it.
        try withKnownIssue("a line whose rest arrives after a retransmission timeout is released unedited", isIntermittent: false) {
            try splitCase(pause)
        } when: {
            pause == .long
        }
    }

    func splitCase(_ pause: SplitPause) throws {
        // All cases use queue index 39, one after the other (.serialized).
        try Integration.withEngine(pause.tag, queue: Integration.queue(39), options: Self.helperOptions, farHost: true) { lab, masqd in
            let sums = try FTPLab.makeFiles(in: lab.workDir + "/files", [("split.bin", 100_000)])
            let ircd = try IRCLab.startServer(lab)
            let listenPort = 41234

            let bob = try IRCLab.startClient(lab, on: .far, clientArgs("receive", nick: "bob", peer: "alice") + ["--timeout", "15"],
                                             name: "bob", waitFor: "ready")
            let alice = try IRCLab.startClient(lab, on: .host1, clientArgs("offer", nick: "alice", peer: "bob") + [
                "--kind", "SEND", "--bind", h1, "--port", String(listenPort), "--advertise", String(IRCLab.host1Integer),
                "--file", lab.workDir + "/files/split.bin", "--split", "--timeout", "15",
            ] + pause.clientArgs, name: "alice")
            let statuses = IRCLab.finish([alice, bob], timeout: 40)
            let transcript = IRCLab.transcript([alice, bob, ircd])
            #expect(statuses == [0, 0], "pause \(pause): client exit statuses \(statuses):\n\(transcript)")

            // alice really sent it in two parts, the first ending inside her address.
            let parts = alice.lines.filter { $0.hasPrefix("sent part ") }
            #expect(parts.count == 2 && parts.first?.hasSuffix(" 32212'") == true, "alice's parts: \(parts)")
            let offers = IRCLab.offers(bob.lines)
            #expect(offers.count == 1 && offers.first?.address == IRCLab.wanInteger,
                    "pause \(pause): bob's offers: \(offers.map { "\($0.dotted):\($0.port)" })\n\(transcript)")
            let received = bob.lines.first { $0.hasPrefix("received ") } ?? "nothing received"
            #expect(received == "received 100000 of 100000 bytes sha256 \(sums["split.bin"]!)", "pause \(pause): bob: \(received)")
            #expect(alice.lines.contains { $0.hasPrefix("accepted \(far):") && $0.hasSuffix(" on \(h1):\(listenPort)") },
                    "pause \(pause): alice:\n\(alice.output)")

            let stats = try Semantics.stats(lab, masqd)
            #expect((stats["helper_lines_held"] ?? 0) >= 1, "pause \(pause): \(IRCLab.helperStats(stats))")
            #expect(stats["helper_held_released"] == 0, "pause \(pause): held bytes were let go unedited: \(IRCLab.helperStats(stats))")
            #expect(stats["helper_irc_rewrites"] == 1 && stats["helper_irc_expectations"] == 1, "pause \(pause): \(IRCLab.helperStats(stats))")
            #expect((stats["helper_expectations_fulfilled"] ?? 0) >= 1, "pause \(pause): \(IRCLab.helperStats(stats))")
        }
    }
}

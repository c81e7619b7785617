// The client's stream: offers split across segments (held by the core until complete),
// which unfinished lines are held and which pass at once, and random bytes (never a crash,
// always well-formed packets, a stream the server can reassemble).

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct IRCStreamTests {
    @Test func anOfferSplitInTwoIsHeldThenRewrittenWhole() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let c = insideISN + 1
        let first = "NICK alice\r\nPRIVMSG bob :\u{01}DCC SEND fi"
        let second = "le.txt 3221226010 5000 1\u{01}\r\n"
        let out1 = link.fromInside(first, seq: c, ack: outsideISN + 1)
        #expect(out1.kind == .replaced)
        #expect(out1.text == "NICK alice\r\n")
        #expect(out1.seq == c)
        expectWellFormed(out1)
        #expect(nat.counters[.helperLinesHeld] == 1)
        #expect(nat.pendingExpectationCount == 0)

        let out2 = link.fromInside(second, seq: c + UInt32(first.utf8.count), ack: outsideISN + 1)
        expectWellFormed(out2)
        #expect(out2.seq == c + 12)
        let x = try #require(portAfter("3405803777", in: out2.text))
        let line = dccLine("SEND file.txt 3405803777 \(x) 1")
        #expect(out2.text == line)
        #expect(try reassembledBytes([out1, out2], from: c) == bytes("NICK alice\r\n" + line))
        #expect(nat.pendingExpectationCount == 1)
        expectAdmitted(nat, from: IRCNet.peer, port: x, to: IRCNet.client, toPort: 5000)

        // Later bytes and the server's acknowledgements stay consistent.
        let originalEnd = c + UInt32((first + second).utf8.count)
        let next = link.fromInside("PING :x\r\n", seq: originalEnd, ack: outsideISN + 1)
        #expect(next.seq == c + 12 + UInt32(line.utf8.count))
        let ack = link.fromOutside(seq: outsideISN + 1, ack: next.seq + 9, flags: TCPFlag.ack)
        expectWellFormed(ack)
        #expect(ack.ack == originalEnd + 9)
    }

    @Test func anOfferSplitAtEveryPointIsRewrittenWhole() throws {
        let offer = dccLine("SEND \"a b.txt\" 3221226010 5000 1234")
        let input = Array(("PING :a\r\n" + offer + "PRIVMSG #c :ok\r\n").utf8)
        for split in 1..<input.count {
            let nat = makeIRCTranslator()
            let link = ircLink(nat)
            let c = insideISN + 1
            let out1 = link.fromInside(Array(input[..<split]), seq: c, ack: outsideISN + 1)
            let out2 = link.fromInside(Array(input[split...]), seq: c + UInt32(split), ack: outsideISN + 1)
            expectWellFormed(out1)
            expectWellFormed(out2)
            let stream = try reassemble([out1, out2], from: c)
            let x = try #require(portAfter("3405803777", in: stream), "split at \(split)")
            #expect(stream == "PING :a\r\n" + dccLine("SEND \"a b.txt\" 3405803777 \(x) 1234") + "PRIVMSG #c :ok\r\n", "split at \(split)")
            #expect(nat.events(.rewrite) == 1, "split at \(split)")
            #expect(nat.pendingExpectationCount == 1, "split at \(split)")
        }
    }

    @Test(arguments: [
        ["PRIV", "MSG bob :\u{01}DCC CHAT chat 3221226010 50", "01\u{01}\r\n"],
        [dccLine("CHAT chat 3221226010 5001", terminator: ""), "\r", "\n"],
        [":alice!a@h", "ost PRIVMSG bob :\u{01}dcc chat chat 3221226010 5001\u{01}\r\nPING :x\r\n@t", "ag=1 NOTICE bob :\u{01}DCC CHAT chat 3221226010 5001\u{01}\n"],
    ])
    func anOfferSplitInThreeIsHeldThenRewrittenWhole(_ parts: [String]) throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let c = insideISN + 1
        var original = c
        var outputs: [Sent] = []
        for part in parts {
            let sent = link.fromInside(part, seq: original, ack: outsideISN + 1)
            expectWellFormed(sent)
            outputs.append(sent)
            original += UInt32(part.utf8.count)
        }
        let stream = try reassemble(outputs, from: c)
        var expected = parts.joined()
        var offers = 0
        for line in lines(stream) where line.contains(" 3405803777 ") {
            let x = try #require(portAfter("3405803777", in: line))
            expected = expected.replacingFirst("3221226010 5001", with: "3405803777 \(x)")
            offers += 1
        }
        #expect(offers == lines(parts.joined()).filter { $0.contains("3221226010") }.count)
        #expect(stream == expected)
        #expect(nat.events(.rewrite) == UInt64(offers))
    }

    /// (an unfinished line, whether it is held)
    static let unfinished: [(String, Bool)] = [
        // (an unfinished line, whether it is held)
        ("PRIVMSG #c :hello wor", false),
        ("PRIVMSG #c :\u{01}ACTION wav", false),
        ("PRIVMSG #c :x\u{01}DCC SEND", false),
        ("NICK al", false),
        ("JOIN #c", false),
        ("GET / HTTP/1.1", false),
        ("P", true),
        ("privms", true),
        ("NOTICE", true),
        ("PRIVMSG bob", true),
        ("PRIVMSG bob :", true),
        ("PRIVMSG bob :\u{01}DC", true),
        ("PRIVMSG bob :\u{01}DCC SEND x 32212", true),
        (":alice!a@host PRIVMSG bo", true),
        ("@time=x :alice NOTI", true),
        (":alice", true),
        ]

    @Test(arguments: IRCStreamTests.unfinished)
    func whichUnfinishedLinesAreHeld(_ part: String, _ held: Bool) {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let sent = link.fromInside(part, seq: insideISN + 1, ack: outsideISN + 1)
        expectWellFormed(sent)
        #expect(sent.text == (held ? "" : part))
        #expect(nat.counters[.helperLinesHeld] == (held ? 1 : 0))
        // Either way, the rest of the line arrives and the stream is whole.
        let rest = "\r\n"
        let restSent = link.fromInside(rest, seq: insideISN + 1 + UInt32(part.utf8.count), ack: outsideISN + 1)
        #expect((try? reassembledBytes([sent, restSent], from: insideISN + 1)) == bytes(part + rest))
    }

    @Test func aHeldOfferTheClientNeverFinishesIsLetGo() throws {
        let nat = makeIRCTranslator()
        let link = ircLink(nat)
        let part = "PING :x\r\nPRIVMSG bob :\u{01}DCC SEND x 3221226010 50"
        let first = link.fromInside(part, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(first.text == "PING :x\r\n")
        var last = first
        for _ in 0..<4 { last = link.fromInside(part, seq: insideISN + 1, ack: outsideISN + 1) }
        #expect(last.text == part)
        #expect(nat.counters[.helperHeldReleased] == 1)
        // The stream continues mid-line: the rest is not an offer; the next line is.
        let rest = "00 1\u{01}\r\n" + dccLine("SEND y 3221226010 5001 1")
        let restSent = link.fromInside(rest, seq: insideISN + 1 + UInt32(part.utf8.count), ack: outsideISN + 1)
        let x = try #require(portAfter("3405803777", in: restSent.text))
        #expect(restSent.text == "00 1\u{01}\r\n" + dccLine("SEND y 3405803777 \(x) 1"))
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.malformed) == 0)
        expectNotAdmitted(nat, from: IRCNet.peer, port: 5000)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func randomBytesNeverCrash(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let nat = makeIRCTranslator(helper: IRCHelper(allowForeignAddresses: seed == 3)) {
            $0.helperLimits.expectationsPerConnection = 500
            $0.helperLimits.expectations = 600
            if seed == 4 { $0.helperLimits.heldBytes = 24 }
        }
        let link = ircLink(nat)
        let valid = [dccLine("SEND x 3221226010 5000 1"), dccLine("CHAT chat 3221226010 6000"), dccLine("SEND \"a b\" 192.0.2.26 7000 5"),
                     dccLine("ACCEPT x 5000 10"), dccLine("SEND x 3221226083 5000 1"), "PRIVMSG #c :hello\r\n"]
        let pieces = ["PRIVMSG ", "privmsg ", "NOTICE ", "bob ", "#c ", ":", "\u{01}", "\u{01}DCC ", "DCC ", "SEND ", "CHAT ", "TSEND ",
                      "SCHAT ", "ACCEPT ", "RESUME ", "chat ", "\"", "\"a b\" ", "3221226010", "3405803777", "4294967295", "4294967296",
                      "192.0.2.26", "::1", " ", "  ", "0", "5000", "65535", "65536", "99999999999999999999", "\r\n", "\n", "\r",
                      "@", "@t=1 ", ":alice!a@h ", "\u{7f}", "\u{00}", "P", "PRIV", "GET "]
        let c = insideISN + 1
        var clientSeq = c
        var serverSeq = outsideISN + 1
        var outputs: [Sent] = []
        var clientSentEnd = c
        for round in 0..<2500 {
            var payload: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: payload += bytes(valid.randomElement(using: &rng)!)
                case 1...6: payload += bytes(pieces.randomElement(using: &rng)!)
                default: payload += (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            if round % 97 == 0 { payload += [UInt8](repeating: UInt8(ascii: "a"), count: 700) }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                // The server talks (and acknowledges what the client sent so far).
                let sent = link.fromOutside(payload, seq: serverSeq, ack: clientSentEnd)
                serverSeq += UInt32(payload.count)
                #expect(sent.kind == .rewritten || sent.kind == .replaced, "round \(round)")
                #expect(sent.payload == payload, "round \(round)")
                expectWellFormed(sent)
            } else {
                let sent = link.fromInside(payload, seq: clientSeq, ack: serverSeq)
                clientSeq += UInt32(payload.count)
                #expect(sent.kind == .rewritten || sent.kind == .replaced, "round \(round)")
                expectWellFormed(sent)
                outputs.append(sent)
                let end = sent.seq &+ UInt32(sent.payload.count)
                if Int32(bitPattern: end &- clientSentEnd) > 0 { clientSentEnd = end }
            }
        }
        // Whatever was rewritten, the server gets one contiguous stream.
        let stream = try reassembledBytes(outputs, from: c)
        #expect(stream.count == Int(clientSentEnd &- c))
        #expect(nat.events(.rewrite) > 0)
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var result = self
        result.replaceSubrange(range, with: replacement)
        return result
    }
}

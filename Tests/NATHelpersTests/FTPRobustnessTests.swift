// Lines that must not be mistaken for commands, limits, and random bytes (which must never
// crash the helper or the core, and must always leave well-formed packets).

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct FTPRobustnessTests {
    @Test func aSegmentStartingMidLineIsNotACommand() {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        // "SITE EXEC " cannot become a PORT line: it passes, and the segment that carries
        // the rest of it does not start a line.
        let seq = sendUnchanged(link, ["SITE EXEC ", "PORT 192,0,2,10,19,137\r\n"])
        #expect(nat.events(.rewrite) == 0)
        // The next line is a command again.
        let next = link.fromInside("PORT 192,0,2,10,19,137\r\n", seq: seq, ack: outsideISN + 1)
        #expect(next.text.hasPrefix("PORT 203,0,113,1,"))
    }

    @Test func longLinesAreNotOurs() {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        var seq = insideISN + 1
        // A complete line over the limit.
        let padded = "PORT " + String(repeating: " ", count: FTPHelper.maxLineLength) + "192,0,2,10,19,137\r\n"
        let sent = link.fromInside(padded, seq: seq, ack: outsideISN + 1)
        seq += UInt32(padded.utf8.count)
        #expect(sent.text == padded)
        // An unfinished one over the limit is not held: it passes, and so does its end.
        let head = "PORT " + String(repeating: " ", count: FTPHelper.maxLineLength)
        let headSent = link.fromInside(head, seq: seq, ack: outsideISN + 1)
        seq += UInt32(head.utf8.count)
        #expect(headSent.text == head)
        let tail = "192,0,2,10,19,137\r\n"
        #expect(link.fromInside(tail, seq: seq, ack: outsideISN + 1).text == tail)
        #expect(nat.events(.rewrite) == 0)
        #expect(nat.events(.malformed) == 0)
        #expect(nat.counters[.helperLinesHeld] == 0)
    }

    @Test func aHoldTheCoreRefusesIsNotMistakenForALineStartLater() {
        // With room for only 8 held bytes the core cannot hold "PORT 192,0,2,": the bytes
        // pass as they are (counted as a limit) and the rest of the line is not a command.
        let nat = makeFTPTranslator { $0.helperLimits.heldBytes = 8 }
        let link = clientInsideLink(nat)
        var seq = insideISN + 1
        for part in ["PORT 192,0,2,", "10,19,137\r\nPORT 192,0,2,10,19,138\r\n"] {
            let sent = link.fromInside(part, seq: seq, ack: outsideISN + 1)
            seq += UInt32(part.utf8.count)
            if part.hasPrefix("PORT") {
                #expect(sent.text == part)
            } else {
                #expect(sent.text.hasPrefix("10,19,137\r\nPORT 203,0,113,1,"))
            }
        }
        #expect(nat.events(.limit) == 1)
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.malformed) == 0)
    }

    @Test func aHeldLineTheClientNeverFinishesIsLetGo() {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let part = "NOOP\r\nPORT 192,0,2,10"
        let first = link.fromInside(part, seq: insideISN + 1, ack: outsideISN + 1)
        #expect(first.text == "NOOP\r\n")
        var last = first
        for _ in 0..<4 { last = link.fromInside(part, seq: insideISN + 1, ack: outsideISN + 1) }
        #expect(last.text == part)
        #expect(nat.counters[.helperHeldReleased] == 1)
        // The stream continues mid-line: the rest is not a command; the next line is.
        let rest = ",19,137\r\nPORT 192,0,2,10,19,138\r\n"
        let restSent = link.fromInside(rest, seq: insideISN + 1 + UInt32(part.utf8.count), ack: outsideISN + 1)
        #expect(restSent.text.hasPrefix(",19,137\r\nPORT 203,0,113,1,"))
        #expect(nat.events(.rewrite) == 1)
        #expect(nat.events(.malformed) == 0)
    }

    @Test func moreCommandsInOneSegmentThanEditsPerInspect() {
        // The core takes HelperLimits.editsPerInspect (8) edits per inspection: the line after
        // them passes unchanged, counted, and no expectation is made for it.
        let limit = HelperLimits.editsPerInspect
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let lines = (0...limit).map { "PORT 192,0,2,10,20,\($0)\r\n" }
        let sent = link.fromInside(lines.joined(), seq: insideISN + 1, ack: outsideISN + 1)
        let out = sent.text.split(separator: "\r\n").map(String.init)
        #expect(out.count == limit + 1)
        #expect(out.prefix(limit).allSatisfy { $0.hasPrefix("PORT 203,0,113,1,") })
        #expect(out[limit] + "\r\n" == lines[limit])
        #expect(nat.events(.limit) == 1)
        #expect(nat.pendingExpectationCount == limit)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomBytesNeverCrash(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        let nat = makeFTPTranslator(helper: FTPHelper(allowForeignAddresses: seed == 3)) {
            $0.forwards = [PortForward("tcp:21=192.0.2.10:21")!]
            $0.helperLimits.expectationsPerConnection = 200
            $0.helperLimits.expectations = 300
            if seed == 4 { $0.helperLimits.heldBytes = 16 }
        }
        var client = clientInsideLink(nat)
        var server = serverInsideLink(nat)
        var fresh: UInt16 = 41000 // a side's stream that stops looking like FTP is abandoned: go on on a new connection
        // Valid lines, pieces that steer random text into the parsers' corners, and bytes.
        let valid = [["PORT 192,0,2,10,19,137\r\n", "EPRT |1|192.0.2.10|5001|\r\n", "port 192,0,2,10,4,1\n", "EPRT |2|::1|5001|\r\n"],
                     ["227 Entering Passive Mode (192,0,2,10,195,80).\r\n", "229 Entering Extended Passive Mode (|||50001|)\r\n"]]
        let pieces = ["PORT ", "port ", "EPRT ", "eprt ", "227 ", "229 ", "(", ")", "|", "!", ",", ".", "\r\n", "\n", "\r",
                      "192,0,2,10,", "192.0.2.10", "19,137", "|||", "|1|", "|2|", "255", "256", "1000", "65535", "99999",
                      " ", "0", "9", "\u{7f}", "PO", "EP", "22", "2"]
        var pending: [[UInt8]] = [[], []]
        var sequences: [UInt32] = [insideISN + 1, insideISN + 1]
        var peerAcks: [UInt32] = [insideISN + 1, insideISN + 1]
        for round in 0..<3000 {
            let which = round % 2
            let link = which == 0 ? client : server
            // Add to this side's stream: a valid line (maybe mutated), pieces, or bytes.
            switch UInt8.random(in: 0..<4, using: &rng) {
            case 0:
                var line = Array(valid[which].randomElement(using: &rng)!.utf8)
                if Bool.random(using: &rng) {
                    line[Int.random(in: 0..<line.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                pending[which] += line
            case 1:
                for _ in 0..<Int.random(in: 1...12, using: &rng) { pending[which] += Array(pieces.randomElement(using: &rng)!.utf8) }
            default:
                for _ in 0..<Int.random(in: 1...40, using: &rng) { pending[which].append(UInt8.random(in: 0...255, using: &rng)) }
            }
            // Send a piece of it, of any size, sometimes old bytes again or from ahead of a gap.
            let length = min(pending[which].count, Int.random(in: 1...150, using: &rng))
            guard length > 0 else { continue }
            var payload = Array(pending[which].prefix(length))
            var seq = sequences[which]
            switch UInt8.random(in: 0..<20, using: &rng) {
            case 0:
                // Already-sent bytes (not necessarily the same ones) coalesced with new ones.
                let back = Int.random(in: 1...100, using: &rng)
                seq &-= UInt32(back)
                payload = [UInt8](repeating: UInt8(ascii: "x"), count: back) + payload
            case 1: seq &+= UInt32.random(in: 1...50, using: &rng)
            default: break
            }
            let abandonedBefore = nat.events(.abandoned)
            let sent = link.fromInside(payload, seq: seq, ack: outsideISN + 1)
            defer {
                if nat.events(.abandoned) > abandonedBefore {
                    fresh += 1
                    if which == 0 { client = clientInsideLink(nat, clientPort: fresh) } else { server = serverInsideLink(nat, clientPort: fresh) }
                    pending[which] = []
                    sequences[which] = insideISN + 1
                    peerAcks[which] = insideISN + 1
                }
            }
            switch sent.kind {
            case .replaced, .rewritten:
                expectWellFormed(sent)
                #expect(TCPView.sourceAddress(sent.packet) == Net.external)
                if seq &+ UInt32(payload.count) == sequences[which] &+ UInt32(length) {
                    pending[which].removeFirst(length)
                    sequences[which] &+= UInt32(length)
                }
                peerAcks[which] = sent.seq &+ UInt32(sent.payload.count)
            case .drop(let reason):
                #expect(reason == .helperOutOfOrder || reason == .helperRetransmissionMismatch)
            case .accept:
                Issue.record("an inside packet passed untranslated")
            }
            // The peer acknowledges now and then (in the numbers it received).
            if round % 5 < 2 {
                let ack = link.fromOutside(seq: outsideISN + 1, ack: peerAcks[which], flags: TCPFlag.ack)
                expectWellFormed(ack)
            }
        }
        #expect(nat.helperConnectionCount == 2 + Int(fresh - 41000))
        #expect(nat.events(.rewrite) > 0)
        #expect(nat.events(.malformed) > 0)
        #expect(nat.counters[.helperLinesHeld] > 0)
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func aStreamCutAnywhereComesOutRewrittenLineByLine(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let nat = makeFTPTranslator { $0.helperLimits.expectationsPerConnection = 200 }
        let link = clientInsideLink(nat)
        // A control stream of commands, a third of them PORT or EPRT.
        var input: [String] = []
        for _ in 0..<150 {
            let port = Int.random(in: 1024...65535, using: &rng)
            switch UInt8.random(in: 0..<6, using: &rng) {
            case 0: input.append("PORT 192,0,2,10,\(port >> 8),\(port & 0xff)\r\n")
            case 1: input.append("EPRT |1|192.0.2.10|\(port)|\r\n")
            case 2: input.append("RETR file-\(port).txt\r\n")
            case 3: input.append("NOOP\r\n")
            case 4: input.append("PORT 192,0,2,10,19,137x\r\n") // malformed: unchanged
            default: input.append("TYPE I\n")
            }
        }
        let stream = Array(input.joined().utf8)
        var offset = 0
        var outputs: [Sent] = []
        let c = insideISN + 1
        while offset < stream.count {
            let length = min(stream.count - offset, Int.random(in: 1...60, using: &rng))
            let sent = link.fromInside(Array(stream[offset..<(offset + length)]), seq: c + UInt32(offset), ack: outsideISN + 1)
            #expect(sent.kind == .replaced)
            expectWellFormed(sent)
            outputs.append(sent)
            offset += length
            // The server acknowledges what it received (so the edit log slides).
            let ack = link.fromOutside(seq: outsideISN + 1, ack: sent.seq &+ UInt32(sent.payload.count), flags: TCPFlag.ack)
            // It got everything but an unfinished PORT/EPRT line, which is held.
            var lineStart = offset
            while lineStart > 0, stream[lineStart - 1] != UInt8(ascii: "\n") { lineStart -= 1 }
            let held = lineStart < offset && (stream[lineStart] == UInt8(ascii: "P") || stream[lineStart] == UInt8(ascii: "E"))
            #expect(ack.ack == c + UInt32(held ? lineStart : offset))
        }
        let output = lines(try reassemble(outputs, from: c))
        #expect(output.count == input.count)
        var rewrites = 0
        for (line, out) in zip(input, output) {
            if line.hasPrefix("PORT 192,0,2,10,"), !line.contains("x") {
                let x = try #require(portFromCommas(out))
                #expect(out == "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n")
                rewrites += 1
            } else if line.hasPrefix("EPRT ") {
                let x = try #require(UInt16(out.split(separator: "|", omittingEmptySubsequences: false)[3]))
                #expect(out == "EPRT |1|203.0.113.1|\(x)|\r\n")
                rewrites += 1
            } else {
                #expect(out == line)
            }
        }
        #expect(rewrites > 20)
        #expect(nat.events(.rewrite) == UInt64(rewrites))
        #expect(nat.events(.limit) == 0)
        #expect(nat.pendingExpectationCount == rewrites)
    }
}

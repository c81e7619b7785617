// What a length-changing rewrite does to the rest of the connection: sequence numbers after
// it, acknowledgements and SACK blocks mapped back, retransmissions rebuilt identically, and
// lines split across segments held until complete.

import NATCore
import NATHelpers
import NATTestKit
import Testing

@Suite struct FTPSequenceTests {
    @Test func oneRewriteShiftsLaterSequenceNumbersAndMapsAcknowledgementsBack() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        let s = outsideISN + 1
        let command = "PORT 192,0,2,10,19,137\r\n"
        let length = UInt32(command.utf8.count)
        let sent = link.fromInside(command, seq: c, ack: s)
        let newLength = UInt32(sent.payload.count)
        let delta = newLength &- length // "203,0,113,1" is one byte longer than "192,0,2,10", and the port may differ
        #expect(Int32(bitPattern: delta) >= 1)

        // The server acknowledges everything it got: mapped back to the original numbers.
        let ack = link.fromOutside(seq: s, ack: c + newLength, flags: TCPFlag.ack)
        #expect(ack.kind == .replaced)
        expectWellFormed(ack)
        #expect(ack.ack == c + length)
        #expect(ack.seq == s)
        // An acknowledgement inside the replaced argument means the client must resend it
        // all: it maps to the start of the edit ("PORT " stays).
        let partial = link.fromOutside(seq: s, ack: c + 10, flags: TCPFlag.ack)
        #expect(partial.ack == c + 5)
        let before = link.fromOutside(seq: s, ack: c + 3, flags: TCPFlag.ack)
        #expect(before.ack == c + 3)

        // The next client bytes move by the delta.
        let list = link.fromInside("LIST\r\n", seq: c + length, ack: s)
        #expect(list.seq == c + length + delta)
        #expect(list.text == "LIST\r\n")
        expectWellFormed(list)
        let noop = link.fromInside("NOOP\r\n", seq: c + length + 6, ack: s)
        #expect(noop.seq == c + length + 6 + delta)

        // The server got NOOP but not LIST: it acknowledges up to LIST and SACKs NOOP.
        let sackSent = link.fromOutside(
            seq: s, ack: c + newLength, flags: TCPFlag.ack,
            options: PacketBuilder.sackOption([(c + newLength + 6, c + newLength + 12)]))
        expectWellFormed(sackSent)
        #expect(sackSent.ack == c + length)
        let blocks = TCPView.sackBlocks(sackSent.packet)
        #expect(blocks.count == 1)
        #expect(blocks.first?.0 == c + length + 6)
        #expect(blocks.first?.1 == c + length + 12)

        // The server's own stream is not edited: the client's ACKs of it pass as they are.
        let reply = link.fromOutside("200 PORT command successful\r\n", seq: s, ack: c + newLength + 12)
        #expect(reply.seq == s)
        #expect(reply.ack == c + length + 12)
        let clientAck = link.fromInside(seq: c + length + 12, ack: s + 29, flags: TCPFlag.ack)
        #expect(clientAck.ack == s + 29)
        #expect(clientAck.seq == c + length + 12 + delta)
        expectWellFormed(clientAck)
    }

    @Test func manyRewritesOfDifferentSizesAccumulate() throws {
        let nat = makeFTPTranslator(helper: FTPHelper(allowForeignAddresses: true)) {
            $0.helperLimits.expectationsPerConnection = 32
        }
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        var serverSeq = outsideISN + 1
        var original = c // next original sequence number of the client's stream
        var delta: UInt32 = 0 // cumulative (wrapping) length change so far
        let hosts = ["192,0,2,1", "192,0,2,10", "192,0,2,100", "192,0,2,7", "192,0,2,200", "192,0,2,33", "192,0,2,10",
                     "192,0,2,255", "192,0,2,2", "192,0,2,99", "192,0,2,123", "192,0,2,5"]
        let ports: [(Int, Int)] = [(4, 1), (19, 137), (255, 255), (100, 0), (4, 0), (39, 16), (200, 200), (8, 8), (195, 80), (10, 10),
                                   (77, 1), (4, 2)]
        var lengthsSeen = Set<Int>()
        for i in 0..<hosts.count {
            let command = "PORT \(hosts[i]),\(ports[i].0),\(ports[i].1)\r\n"
            let length = UInt32(command.utf8.count)
            let sent = link.fromInside(command, seq: original, ack: serverSeq)
            expectWellFormed(sent)
            #expect(sent.seq == original &+ delta, "command \(i)")
            let x = try #require(portFromCommas(sent.text))
            #expect(sent.text == "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n")
            let change = UInt32(sent.payload.count) &- length
            lengthsSeen.insert(Int(Int32(bitPattern: change)))
            let sentEnd = sent.seq &+ UInt32(sent.payload.count)

            // An ACK of the previous command's end, and of this one's, both map back.
            let oldAck = link.fromOutside(seq: serverSeq, ack: original &+ delta, flags: TCPFlag.ack)
            #expect(oldAck.ack == original, "command \(i)")
            delta = delta &+ change
            original += length
            let reply = "200 PORT command successful\r\n"
            let replySent = link.fromOutside(reply, seq: serverSeq, ack: sentEnd)
            #expect(replySent.ack == original, "command \(i)")
            #expect(replySent.text == reply)
            serverSeq += UInt32(reply.utf8.count)
        }
        #expect(lengthsSeen.count >= 3)
        #expect(nat.events(.rewrite) == UInt64(hosts.count))
        #expect(nat.events(.limit) == 0)
        // The segments after all of them carry the whole accumulated change.
        let quit = link.fromInside("QUIT\r\n", seq: original, ack: serverSeq)
        #expect(quit.seq == original &+ delta)
        let ackQuit = link.fromOutside(seq: serverSeq, ack: original &+ delta &+ 6, flags: TCPFlag.ack | TCPFlag.fin)
        #expect(ackQuit.ack == original + 6)
        expectWellFormed(ackQuit)
    }

    @Test func unacknowledgedEditsBeyondTheLogPassUnchanged() throws {
        // The core remembers HelperLimits.editLog unacknowledged edits per direction; one
        // more cannot be mapped, so that line passes as it is (counted as a limit).
        let nat = makeFTPTranslator { $0.helperLimits.expectationsPerConnection = 32 }
        let link = clientInsideLink(nat)
        var original = insideISN + 1
        var delta: UInt32 = 0
        for i in 0..<(HelperLimits.editLog + 1) {
            let command = "PORT 192,0,2,10,20,\(i + 10)\r\n"
            let sent = link.fromInside(command, seq: original, ack: outsideISN + 1)
            #expect(sent.seq == original &+ delta)
            if i < HelperLimits.editLog {
                #expect(sent.text != command)
            } else {
                #expect(sent.text == command)
                #expect(nat.events(.limit) == 1)
            }
            delta = delta &+ UInt32(sent.payload.count) &- UInt32(command.utf8.count)
            original += UInt32(command.utf8.count)
        }
        // The ninth line finds the log full before anything is done for it: no rewrite is
        // counted and no expectation is left waiting for a connection no one was told about.
        #expect(nat.events(.rewrite) == UInt64(HelperLimits.editLog))
        #expect(nat.pendingExpectationCount == HelperLimits.editLog)
        let after = link.fromInside("NOOP\r\n", seq: original, ack: outsideISN + 1)
        #expect(after.seq == original &+ delta)
    }

    @Test func aRetransmissionIsRebuiltIdentically() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        let command = "PORT 192,0,2,10,19,137\r\n"
        let first = link.fromInside(command, seq: c, ack: outsideISN + 1)
        #expect(first.kind == .replaced)
        let again = link.fromInside(command, seq: c, ack: outsideISN + 1)
        #expect(again.kind == .replaced)
        #expect(again.packet == first.packet)
        #expect(nat.pendingExpectationCount == 1)
        #expect(nat.events(.expectation) == 1)
        #expect(nat.events(.rewrite) == 1)

        // After more bytes, still the same; and coalesced with the next segment, the
        // rewritten line then the new bytes.
        let list = link.fromInside("LIST\r\n", seq: c + 24, ack: outsideISN + 1)
        let third = link.fromInside(command, seq: c, ack: outsideISN + 1)
        #expect(third.packet == first.packet)
        let coalesced = link.fromInside(command + "LIST\r\n", seq: c, ack: outsideISN + 1)
        #expect(coalesced.text == first.text + "LIST\r\n")
        #expect(coalesced.seq == c)
        expectWellFormed(coalesced)
        #expect(list.seq == c + UInt32(first.payload.count))
        #expect(nat.pendingExpectationCount == 1)
    }

    @Test func aLineSplitInTwoIsHeldThenRewrittenWhole() throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        let first = "TYPE I\r\nPORT 192,0,2,"
        let second = "10,19,137\r\n"
        let out1 = link.fromInside(first, seq: c, ack: outsideISN + 1)
        #expect(out1.kind == .replaced)
        #expect(out1.text == "TYPE I\r\n")
        #expect(out1.seq == c)
        expectWellFormed(out1)
        #expect(nat.counters[.helperLinesHeld] == 1)
        #expect(nat.pendingExpectationCount == 0)

        // A retransmission of the first part (the server has not acknowledged the held
        // bytes) sends what was sent before, not the held part.
        let retransmitted = link.fromInside(first, seq: c, ack: outsideISN + 1)
        #expect(retransmitted.text == "TYPE I\r\n")

        let out2 = link.fromInside(second, seq: c + UInt32(first.utf8.count), ack: outsideISN + 1)
        expectWellFormed(out2)
        #expect(out2.seq == c + 8)
        let x = try #require(portFromCommas(out2.text))
        let line = "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n"
        #expect(out2.text == line)
        #expect(try reassemble([out1, out2], from: c) == "TYPE I\r\n" + line)
        #expect(nat.pendingExpectationCount == 1)

        let originalEnd = c + UInt32((first + second).utf8.count)
        let next = link.fromInside("LIST\r\n", seq: originalEnd, ack: outsideISN + 1)
        #expect(next.seq == c + 8 + UInt32(line.utf8.count))
        let ack = link.fromOutside(seq: outsideISN + 1, ack: next.seq + 6, flags: TCPFlag.ack)
        #expect(ack.ack == originalEnd + 6)
    }

    @Test(arguments: [0, 8])
    func aHeldLineRetransmittedWithItsRestGoesThrough(_ from: Int) throws {
        // The rest of a held line is lost before it reaches us; the client's retransmission
        // (from `from`: the start of the segment, or the first byte the server lacks)
        // carries bytes already seen, the held ones, and the rest. It must not be dropped
        // (every retransmission would be, the same way: the connection would stall).
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        let first = "TYPE I\r\nPORT 192,0,2,"
        let out1 = link.fromInside(first, seq: c, ack: outsideISN + 1)
        #expect(out1.text == "TYPE I\r\n")
        let whole = Array("TYPE I\r\nPORT 192,0,2,10,19,137\r\n".utf8)
        let again = link.fromInside(Array(whole[from...]), seq: c + UInt32(from), ack: outsideISN + 1)
        #expect(again.kind == .replaced)
        expectWellFormed(again)
        let x = try #require(portFromCommas(again.text))
        let line = "PORT 203,0,113,1,\(x >> 8),\(x & 0xff)\r\n"
        #expect(try reassemble([out1, again], from: c) == "TYPE I\r\n" + line)
        #expect(nat.pendingExpectationCount == 1)
        let next = link.fromInside("LIST\r\n", seq: c + UInt32(whole.count), ack: outsideISN + 1)
        #expect(next.seq == c + 8 + UInt32(line.utf8.count))
    }

    @Test func aRewrittenSegmentRetransmittedWithNewBytesGoesThrough() throws {
        // The rewritten PORT segment is lost after us; the client retransmits it together
        // with its next command, which we have not seen yet.
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        let command = "PORT 192,0,2,10,19,137\r\n"
        let out1 = link.fromInside(command, seq: c, ack: outsideISN + 1)
        let again = link.fromInside(command + "LIST\r\n", seq: c, ack: outsideISN + 1)
        #expect(again.kind == .replaced)
        expectWellFormed(again)
        #expect(try reassemble([out1, again], from: c) == out1.text + "LIST\r\n")
        #expect(nat.pendingExpectationCount == 1)
        // And once more, now all seen: rebuilt from the log, whole.
        let third = link.fromInside(command + "LIST\r\n", seq: c, ack: outsideISN + 1)
        #expect(third.text == out1.text + "LIST\r\n")
        #expect(third.seq == c)
    }

    @Test(arguments: [
        ["PO", "RT 192,0,2,10", ",19,137\r\n"],
        ["PORT 192,0,2,10,19,137", "\r", "\n"],
        ["E", "PRT |1|192.0.2.10|50", "01|\r\n"],
        ["NOOP\r\nP", "ORT 192,0,2,10,19,137\r\nNOOP\r\nport 1", "92,0,2,10,19,138\r\n"],
    ])
    func aLineSplitInThreeIsHeldThenRewrittenWhole(_ parts: [String]) throws {
        let nat = makeFTPTranslator()
        let link = clientInsideLink(nat)
        let c = insideISN + 1
        var original = c
        var outputs: [Sent] = []
        for part in parts {
            let sent = link.fromInside(part, seq: original, ack: outsideISN + 1)
            #expect(sent.kind == .replaced)
            expectWellFormed(sent)
            outputs.append(sent)
            original += UInt32(part.utf8.count)
        }
        let stream = try reassemble(outputs, from: c)
        let input = parts.joined()
        // Rebuild the expected stream: every PORT/EPRT argument with the external endpoint.
        var expected = ""
        var xs: [UInt16] = []
        for line in lines(stream) {
            if line.lowercased().hasPrefix("port ") {
                let x = try #require(portFromCommas(line))
                xs.append(x)
                expected += line.prefix(5) + "203,0,113,1,\(x >> 8),\(x & 0xff)\r\n"
            } else if line.hasPrefix("EPRT ") {
                let x = try #require(UInt16(line.split(separator: "|", omittingEmptySubsequences: false)[3]))
                xs.append(x)
                expected += "EPRT |1|203.0.113.1|\(x)|\r\n"
            } else {
                expected += line
            }
        }
        #expect(stream == expected)
        #expect(xs.count == lines(input).filter { $0.lowercased().hasPrefix("port ") || $0.hasPrefix("EPRT ") }.count)
        #expect(nat.pendingExpectationCount == xs.count)
        #expect(nat.events(.rewrite) == UInt64(xs.count))
        let next = link.fromInside("LIST\r\n", seq: original, ack: outsideISN + 1)
        #expect(next.seq == c + UInt32(stream.utf8.count))
    }
}

// Regression tests for crashes found by the libFuzzer harness (Tests/Fuzz/run-fuzz.sh).

import NATTestKit
import Testing
@testable import NATCore

/// Turns every "@" the internal endpoint sends into "@@@@": an edit that changes the length.
final class GrowAtSignsHelper: ApplicationHelper {
    let name = "grow"

    func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        guard context.senderIsInternal else { return .pass }
        for i in 0..<data.bytes.count where data.bytes[i] == UInt8(ascii: "@") {
            context.replace(i..<(i + 1)) { $0.write("@@@@") }
        }
        return .pass
    }
}

@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static func tcpPayload(_ p: [UInt8]) -> [UInt8] {
        let ihl = Verify.headerLength(p)
        return Array(p[(ihl + Int(p[ihl + 12] >> 4) * 4)..<Verify.totalLength(p)])
    }

    static func sequence(_ p: [UInt8]) -> UInt32 {
        let ihl = Verify.headerLength(p)
        return UInt32(Verify.be16(p, ihl + 4)) << 16 | UInt32(Verify.be16(p, ihl + 6))
    }

    /// A late duplicate SYN moved a helper stream back to its start but kept the edit log made
    /// in the old numbers. The segment sent again after it was edited again, so the log held
    /// two edits out of stream order, and rebuilding the next retransmission from that log
    /// copied a negative length (2^32 - 1 bytes as UInt32): heap-buffer-overflow, crash.
    @Test func duplicateSYNAfterAnEditThenRetransmissions() throws {
        let nat = makeTranslator { $0.helpers = [HelperRegistration(helper: GrowAtSignsHelper(), ports: [21])] }
        let syn = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.syn, seq: 1000)
        let data = PacketBuilder.tcp(Net.hostA, 40000, Net.remote, 21, flags: TCPFlag.ack | TCPFlag.psh,
                                     seq: 1001, ack: 1, payload: Array("ab@cd\r\n".utf8))

        var p = syn
        #expect(nat.run(&p, .outbound) == .acceptRewritten)
        p = data
        guard case .acceptReplaced(let firstBuffer) = nat.run(&p, .outbound) else {
            Issue.record("the edited segment was not replaced")
            return
        }
        let first = Array(firstBuffer)
        #expect(Self.tcpPayload(first) == Array("ab@@@@cd\r\n".utf8))

        p = syn // the late duplicate
        _ = nat.run(&p, .outbound)
        p = data // sent again: it continues the restarted stream
        _ = nat.run(&p, .outbound)
        p = data // and again: a retransmission, rebuilt from the edit log
        let verdict = nat.run(&p, .outbound)
        guard case .acceptReplaced(let againBuffer) = verdict else {
            Issue.record("retransmission: \(verdict)")
            return
        }
        let again = Array(againBuffer)
        #expect(Self.tcpPayload(again) == Self.tcpPayload(first))
        #expect(Self.sequence(again) == Self.sequence(first))
        #expect(Verify.ipHeaderChecksumValid(again) && Verify.transportChecksumValid(again))
    }
}

// The TFTP helper (RFC 1350; the kernel's nf_conntrack_tftp + nf_nat_tftp): a client inside
// sends its read or write request to the server's port 69, and the server answers from a new
// port of its own (its transfer ID). Address-and-port-dependent filtering refuses that
// answer, since the client never sent to that port. For each request the helper expects one
// flow from the server's address, any port, to the client's mapping. TFTP carries no
// addresses, so nothing is rewritten. A retransmitted request renews the same expectation.
//
// A server inside behind `--forward udp:69=…` needs nothing: its answers leave from a new
// port through a new mapping, and the client takes whatever port answers as the server's.

import NATCore

public final class TFTPHelper: ApplicationHelper {
    public let name = "tftp"
    public init() {}

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        // Only a request from a client inside opens anything; the server's answers pass.
        guard context.direction == .fromClient, context.clientIsInternal else { return .pass }
        switch TFTPRequestParser.parse(data.bytes) {
        case .request:
            // One flow from the server's address, any port, to the client's own mapping.
            _ = context.expectConnection(protocolNumber: IPProtocolNumber.udp, from: context.remoteAddress, port: nil,
                                         to: context.internalAddress, port: context.internalPort)
        case .malformed:
            context.count(.malformed) // shown by `masqd stats` as helper_tftp_malformed
        case .notARequest:
            break
        }
        return .pass // TFTP names no address: nothing to rewrite
    }
}

import NATCore

// The rendezvous helper. A client inside announces where it can be reached by sending
// `REGISTER a.b.c.d:port` to the rendezvous server's port; the server introduces it to peers
// and answers from another of its ports. Behind masquerading the client only knows its LAN
// endpoint, and address-and-port-dependent filtering would refuse the answer from a port the
// client never sent to. So the helper rewrites the announced endpoint to the external
// address and the port the client's endpoint is mapped to, and expects one flow from the
// server's address, any port, to that mapping.

public final class RendezvousHelper: ApplicationHelper {
    /// The port rendezvous servers listen on unless `--helper-ports rendezvous=…` says otherwise.
    public static let defaultPort: HelperPort = .udp(7000)

    public let name = "rendezvous"
    public init() {}

    public func inspect(_ data: HelperData, _ context: inout HelperContext) -> HelperVerdict {
        // Only an inside client's registration names an endpoint the outside cannot reach.
        guard context.direction == .fromClient, context.clientIsInternal else { return .pass }
        switch RegisterLine.parse(data.bytes) {
        case .other:
            return .pass
        case .malformed:
            context.count(.malformed)
            return .pass
        case .register(let endpoint, let address, let port):
            // Announcing someone else's address would open the client's NAT for a stranger.
            guard address == context.internalAddress else {
                context.count(.refusedForeignAddress)
                return .pass
            }
            guard context.editsRemaining > 0,
                  let externalPort = context.expectConnection(protocolNumber: IPProtocolNumber.udp, from: context.remoteAddress,
                                                             port: nil, to: address, port: port)
            else { return .pass } // counted as .limit by the core
            let externalAddress = context.externalAddress
            let rewritten = context.replace(endpoint) { text in
                text.write(address: externalAddress, separator: UInt8(ascii: "."))
                text.write(byte: UInt8(ascii: ":"))
                text.write(decimal: UInt32(externalPort))
            }
            context.count(rewritten ? .rewrite : .limit)
            return .pass
        }
    }
}

import NATCore

// `--redirect tcp:PORT=LOCALPORT` (repeatable), `--max-redirect-flows N`,
// `--max-redirect-flows-per-host N` and
// `--reverse-path-check yes|no`: transparent redirect to a local proxy
// (NATTranslator-Redirect.swift, Engine-Redirect.swift) and the LAN-side reverse-path rule
// (FirewallPlan).

extension EngineOptions {
    /// The redirects, in order, each port once.
    func checkedRedirects() throws(MasqdError) -> [TransparentRedirect] {
        var redirects: [TransparentRedirect] = []
        for text in redirect {
            guard let parsed = Self.parseRedirect(text) else {
                throw .option("--redirect", text, "expected tcp:PORT=LOCALPORT with ports 1-65535")
            }
            if let other = redirects.first(where: { $0.port == parsed.port }) {
                throw .option("--redirect", text, "port \(parsed.port) is already redirected by --redirect \(other)")
            }
            redirects.append(parsed)
        }
        return redirects
    }

    /// `tcp:80=3128`; nil when malformed.
    static func parseRedirect(_ text: String) -> TransparentRedirect? {
        guard text.hasPrefix("tcp:") else { return nil }
        let pieces = text.dropFirst(4).split(separator: "=", omittingEmptySubsequences: false)
        guard pieces.count == 2, let port = PortForward.parsePort(pieces[0]), let localPort = PortForward.parsePort(pieces[1]) else {
            return nil
        }
        return TransparentRedirect(port: port, localPort: localPort)
    }

    func checkedMaxRedirectFlows() throws(MasqdError) -> Int {
        guard let maxRedirectFlows else { return NATConfiguration().maxRedirectSessions }
        guard let value = Int(maxRedirectFlows), (1...1_048_576).contains(value) else {
            throw .option("--max-redirect-flows", maxRedirectFlows, "expected a number from 1 to 1048576")
        }
        return value
    }

    func checkedMaxRedirectFlowsPerHost() throws(MasqdError) -> Int {
        guard let maxRedirectFlowsPerHost else { return NATConfiguration().maxRedirectSessionsPerHost }
        guard let value = Int(maxRedirectFlowsPerHost), (1...1_048_576).contains(value) else {
            throw .option("--max-redirect-flows-per-host", maxRedirectFlowsPerHost, "expected a number from 1 to 1048576")
        }
        return value
    }

    func checkedReversePathCheck() throws(MasqdError) -> Bool {
        guard let reversePathCheck else { return true }
        switch reversePathCheck {
        case "yes", "true": return true
        case "no", "false": return false
        default: throw .option("--reverse-path-check", reversePathCheck, "expected yes or no")
        }
    }
}

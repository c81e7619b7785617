// `--firewall nft|iptables` (FirewallChoice.swift).

extension EngineOptions {
    func checkedFirewall() throws(MasqdError) -> FirewallChoice? {
        guard let firewall else { return nil }
        guard let choice = FirewallChoice(rawValue: firewall) else {
            throw .option("--firewall", firewall, "expected nft or iptables")
        }
        return choice
    }
}
